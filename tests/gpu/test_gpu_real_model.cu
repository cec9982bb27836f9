// The GPU chain on the real SmolLM2-135M-Instruct (Q4_1 GGUF dequantized to fp32): chapter 6
// against chapter 2, chapter 7's TF32/bf16 GEMMs against chapter 6, chapter 8's decoder against
// chapter 4, on real text. Real logits are far more decisive than random weights', yet bf16 still
// meets a few near-ties: the checks are the storage tolerance, no argmax flip at a decisive row
// (plus >= 99% agreement for fp32 and TF32), and greedy tokens identical until a near-tie. Skips
// without a GPU or without the model (scripts/fetch_model.sh).
// ctest-labels: chapter model
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "common/compare.hpp"
#include "common/model_source.hpp"
#include "cpu_reference/generation.hpp"
#include "cpu_reference/text.hpp"
#include "cpu_reference/transformer.hpp"
#include "cuda/decoder.hpp"
#include "cuda/forward.hpp"
#include "gpu_test.hpp"
#include "greedy_check.hpp"

using namespace lab;

namespace {

#define LAB_REQUIRE_SMOLLM2()                                            \
  if (!std::filesystem::exists(smollm2_gguf_path()))                     \
  GTEST_SKIP() << "SmolLM2 is not in the cache (" << smollm2_gguf_path() \
               << "): run scripts/fetch_model.sh to enable the real-model GPU tests"

const LoadedModel& smollm2() {
  static const LoadedModel m = load_model("smollm2", 0);
  return m;
}

// About 250 tokens of ordinary prose: a share of argmax agreement needs rows to mean anything
// (with 54 rows a single near-tie flip is already 98.1%).
const char* const kText =
    "The KV cache stores the keys and values of every token the model has already seen, so that "
    "each new token costs one pass over the weights instead of a pass over the whole prefix. On a "
    "GPU the decode step is limited by memory bandwidth, not by arithmetic. A student who wants to "
    "see this for herself can count the bytes: every weight of the model is read once for every "
    "token, and each weight takes part in exactly one multiply and one add. The ratio of the two, "
    "the arithmetic intensity, is close to one operation per byte, while the hardware could do "
    "several hundred operations in the time it takes to fetch a byte from memory. Batching many "
    "requests together raises the intensity, because one read of a weight now serves every request "
    "in the batch, and this is why servers that answer thousands of users at once are so much "
    "cheaper per token than a single conversation. Prefill is different again: the whole prompt is "
    "processed at once, the matrix products are large, and the tensor cores are kept busy. The "
    "time to the first token therefore grows with the length of the prompt, while the time between "
    "later tokens depends mostly on the size of the model and the speed of its memory.";

const char* const kChats[] = {"What is the capital of France?", "Write one sentence about the sea.",
                              "List three prime numbers."};

}  // namespace

TEST(RealModelGpu, Ch06AndCh07MatchOnSmolLM2) {
  LAB_REQUIRE_GPU();
  LAB_REQUIRE_SMOLLM2();
  const ModelWeights& w = smollm2().weights;
  auto tokens = cpu::prompt_tokens(*smollm2().tokenizer, kText, "");
  ASSERT_GE(tokens.size(), 200u);
  // Under the sanitizers (small_test_scale): the first 48 tokens, the CPU reference included.
  if (small_test_scale()) tokens.resize(48);
  const int n = static_cast<int>(tokens.size());
  const auto V = static_cast<std::size_t>(w.config.vocab_size);
  const auto ref = cpu::teacher_forced_logits(w, tokens);
  const auto naive = cuda::TeacherForcedForward(w, cuda::MatmulBackend::Naive, n).forward(tokens);
  const auto r06 = compare(ref, naive, {1e-4, "issue 5: ch06 <= 1e-4 on SmolLM2"}, V);
  std::printf("ch06 vs ch02: %s\n", summary(r06).c_str());
  EXPECT_TRUE(r06.passed) << summary(r06);
  EXPECT_EQ(r06.argmax_agreement, 1.0);
  for (auto [backend, dtype] : {std::pair{cuda::MatmulBackend::CublasFP32, DType::FP32},
                                std::pair{cuda::MatmulBackend::CublasTF32, DType::FP16},
                                std::pair{cuda::MatmulBackend::CublasBF16, DType::BF16}}) {
    const auto got = cuda::TeacherForcedForward(w, backend, n).forward(tokens);
    const Tolerance tol = dtype == DType::FP32 ? Tolerance{1e-4, "fp32: order of sums only"}
                                               : storage_tolerance(dtype, w.config.num_layers + 1);
    const auto r = compare(naive, got, tol, V);
    std::printf("ch07 %s vs ch06: %s; %s\n", cuda::to_string(backend).c_str(), summary(r).c_str(),
                summary(argmax_ties(naive, got, V)).c_str());
    EXPECT_TRUE(r.passed) << cuda::to_string(backend) << ": " << summary(r);
    // No flip at a decisive row, for every mode. The plain >= 99% agreement holds for fp32 and
    // TF32 (100% of 241 rows on the H100); bf16 measured 98.8%: 3 flips, all at near-ties, on
    // rows whose two best logits differ by less than its rounding (Appendix C).
    EXPECT_EQ(argmax_ties(naive, got, V).decisive_flips, 0u) << cuda::to_string(backend);
    // (Not on the sanitizers' 48 rows, where one near-tie flip is 2%: TF32 had one there.)
    if (dtype != DType::BF16 && !small_test_scale())
      EXPECT_GE(r.argmax_agreement, 0.99) << cuda::to_string(backend);
  }
}

TEST(RealModelGpu, Ch08MatchesCh04OnSmolLM2) {
  LAB_REQUIRE_GPU();
  LAB_REQUIRE_SMOLLM2();
  const ModelWeights& w = smollm2().weights;
  const cpu::Transformer<float> model(w);
  // Under the sanitizers (small_test_scale): one prompt, 16 fp32 and 8 bf16 steps.
  const bool small = small_test_scale();
  const int fp32_steps = small ? 16 : 64, steps = small ? 8 : 32;
  for (const char* chat : kChats) {
    if (small && chat != kChats[0]) break;
    const auto prompt = cpu::prompt_tokens(*smollm2().tokenizer, "", chat);
    cpu::KVCache<float> cache(w.config, static_cast<int>(prompt.size()) + 64);
    cpu::GenerationOptions options;
    options.max_new_tokens = fp32_steps;
    const auto ref = cpu::generate_with_cache(
        model, cache, prompt, options, [](std::span<const float> l) { return cpu::argmax(l); });
    const std::vector<int> expected(ref.tokens.begin() + static_cast<long>(prompt.size()),
                                    ref.tokens.end());
    // fp32: the step logits along the 64-token greedy run, <= 1e-4 each (issue 5).
    {
      cuda::Decoder gpu(w, {cuda::DecoderPrecision::FP32, static_cast<int>(prompt.size()) + 64});
      std::vector<float> logits = gpu.forward(prompt);
      double worst = 0;
      for (int s = 0; s < fp32_steps; ++s) {
        const auto r = compare(ref.logits[static_cast<std::size_t>(s)], logits,
                               {1e-4, "issue 5: fp32 decode <= 1e-4"});
        worst = std::max(worst, r.rel_l2);
        ASSERT_TRUE(r.passed) << chat << " step " << s << ": " << summary(r);
        const int token = expected[static_cast<std::size_t>(s)];
        ASSERT_EQ(cpu::argmax(logits), token) << chat << " step " << s;
        if (s + 1 < fp32_steps) logits = gpu.forward(std::span<const int>(&token, 1));
      }
      gpu.reset();
      EXPECT_EQ(gpu.generate_greedy(prompt, fp32_steps, true), expected) << chat;
      std::printf("fp32 \"%s\": %d tokens identical, worst step rel L2 %.1e\n", chat, fp32_steps,
                  worst);
    }
    // bf16: the issue asks for identical greedy tokens for 32 steps, or an exact account of why
    // not. Measured on the H100: two of these prompts agree for all 32; "Write one sentence about
    // the sea." parts at step 5 ("The sea is a vast" + "," or " and"). The account is the
    // near-tie rule: tokens agree until a step whose two candidates are closer than bf16 rounding.
    cuda::Decoder gpu(w, {cuda::DecoderPrecision::BF16, static_cast<int>(prompt.size()) + 64});
    expect_greedy_agrees_until_a_near_tie(gpu, ref, prompt, steps, chat);
  }
}
