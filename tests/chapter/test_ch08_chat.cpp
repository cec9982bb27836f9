// Chapter 8's chat, end to end on the GPU: the streamed reply is the text chapter 4 (greedy) and
// chapter 5 (sampled, same seed) produce on the CPU, the same seed gives the same reply, the
// metrics line follows, and the real SmolLM2 answers the course's question. Skips where ch08 is not
// built or there is no GPU.
// ctest-labels: gpu
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/model_source.hpp"
#include "program.hpp"

namespace {

// Text printed after `marker` up to the next blank line.
std::string text_after(const std::string& out, const std::string& marker) {
  const auto begin = out.find(marker);
  if (begin == std::string::npos) return "<no '" + marker + "' in the output>";
  const auto from = begin + marker.size();
  return out.substr(from, out.find("\n\n", from) - from);
}

#define LAB_REQUIRE_CH08_ON_GPU()                                                             \
  do {                                                                                        \
    if (!program_exists("ch08_cuda_kv_cache")) GTEST_SKIP() << "ch08 is not built (no nvcc)"; \
    if (run_program_with("ch08_cuda_kv_cache", {"--max-new-tokens", "1"}).exit_code ==        \
        lab::kExitNoDevice)                                                                   \
      GTEST_SKIP() << "no CUDA GPU";                                                          \
  } while (0)

ProgramResult chat(std::vector<std::string> args) {
  args.insert(args.begin(), {"--model", "tiny", "--chat", "Hello there", "--max-new-tokens", "24"});
  return run_program_with("ch08_cuda_kv_cache", args);
}

TEST(Ch08Chat, GreedyReplyIsChapter4sText) {
  LAB_REQUIRE_CH08_ON_GPU();
  // fp32 storage: the step logits agree with the CPU to ~1e-7, far below any gap argmax decides.
  const auto gpu = chat({"--precision", "fp32"});
  ASSERT_EQ(gpu.exit_code, 0) << gpu.err;
  const auto cpu = run_program_with("ch04_kv_cache", {"--model", "tiny", "--chat", "Hello there",
                                                      "--steps", "24", "--threads", "1"});
  ASSERT_EQ(cpu.exit_code, 0) << cpu.err;
  const std::string reply = text_after(gpu.out, "assistant: ");
  EXPECT_EQ(reply, text_after(cpu.out, "generated: "));
  EXPECT_FALSE(reply.empty());
  // Then why it stopped and the request's metrics.
  EXPECT_NE(gpu.out.find("stopped: "), std::string::npos) << gpu.out;
  EXPECT_NE(gpu.out.find("TTFT "), std::string::npos) << gpu.out;
  EXPECT_NE(gpu.out.find(" tok/s ("), std::string::npos) << gpu.out;
  // bf16 storage: the same path runs and ends cleanly (its tokens may differ at near-ties).
  EXPECT_EQ(chat({}).exit_code, 0);
}

TEST(Ch08Chat, SampledReplyIsChapter5sTextForTheSameSeed) {
  LAB_REQUIRE_CH08_ON_GPU();
  const std::vector<std::string> sampler = {"--precision", "fp32", "--temperature", "0.8",
                                            "--top-k",     "40",   "--top-p",       "0.95"};
  std::vector<std::string> seeded = sampler;
  seeded.insert(seeded.end(), {"--seed", "1234"});
  const auto a = chat(seeded);
  const auto b = chat(seeded);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  const std::string reply = text_after(a.out, "assistant: ");
  EXPECT_EQ(reply, text_after(b.out, "assistant: "));  // a seed reproduces a reply
  std::vector<std::string> other = sampler;
  other.insert(other.end(), {"--seed", "1235"});
  EXPECT_NE(reply, text_after(chat(other).out, "assistant: "));
  // Chapter 5 samples with the same sampler and seed on the CPU (its defaults: 0.8, 40, 0.95).
  const auto cpu = run_program_with("ch05_sampling_and_metrics",
                                    {"--model", "tiny", "--chat", "Hello there", "--steps", "24",
                                     "--seed", "1234", "--threads", "1", "--requests", "1"});
  ASSERT_EQ(cpu.exit_code, 0) << cpu.err;
  EXPECT_EQ(reply, text_after(cpu.out, "== Sampled (seed 1234) ==\n"));
}

TEST(Ch08Chat, RealModelAnswersTheQuestion) {
  LAB_REQUIRE_CH08_ON_GPU();
  if (!std::filesystem::exists(lab::smollm2_gguf_path()))
    GTEST_SKIP() << "SmolLM2 is not in the cache: run scripts/fetch_model.sh";
  const auto r = run_program_with(
      "ch08_cuda_kv_cache", {"--model", "smollm2", "--chat", "What is the capital of France?"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string reply = text_after(r.out, "assistant: ");
  EXPECT_NE(reply.find("Paris"), std::string::npos) << reply;
  EXPECT_NE(r.out.find("stopped: the model ended its turn"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("TTFT "), std::string::npos) << r.out;
}

}  // namespace
