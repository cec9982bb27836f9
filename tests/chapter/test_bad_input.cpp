// Bad input, end to end: every class of mistake a user can make is run through the built chapters,
// and each must end the same way: one line on stderr naming the problem ("<program>: error: ..."),
// a non-zero exit, no generated text, no crash and no hang. The README's "When things go wrong"
// table lists these tests beside what the user sees. The loaders' own hostile-input tests are in
// tests/cpu (test_gguf.cpp, test_safetensors.cpp, test_hf_config.cpp, test_model_source.cpp).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/gguf_llama.hpp"
#include "common/hf_export.hpp"
#include "common/tokenizer.hpp"
#include "common/weights.hpp"
#include "program.hpp"

namespace {

namespace fs = std::filesystem;

// The chapters that load a model and generate text.
const std::vector<std::string> kGenerating = {"ch03_autoregressive", "ch04_kv_cache",
                                              "ch05_sampling_and_metrics"};
const std::vector<std::string> kLoading = {"ch02_teacher_forcing", "ch03_autoregressive",
                                           "ch04_kv_cache", "ch05_sampling_and_metrics"};

// What the user sees for bad input: exit `code`, one line on stderr "<program>: error: ..." that
// contains `fragment`, and no generated text on stdout.
void expect_one_line_error(const ProgramResult& r, const std::string& program,
                           const std::string& fragment, int code = 1) {
  SCOPED_TRACE(program + " / " + fragment);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, code) << r.err;
  EXPECT_EQ(line_count(r.err), 1) << r.err;
  EXPECT_EQ(r.err.rfind(program + ": error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(fragment), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("generated:"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("Sampled"), std::string::npos) << r.out;
}

ProgramResult run(const std::string& program, std::vector<std::string> args) {
  args.insert(args.end(), {"--threads", "1"});
  return run_program_with(program, args, {}, 120);
}

fs::path fresh_dir(const std::string& name) {
  const fs::path dir =
      fs::path(::testing::TempDir()) / ("lab_bad_input_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

lab::LoadedModel tiny_model() {
  lab::LoadedModel m;
  m.weights = lab::random_weights(lab::preset("tiny"), 5);
  m.tokenizer = std::make_shared<lab::ByteTokenizer>();
  return m;
}

// The tiny model as a Hugging Face directory: config.json, model.safetensors, tokenizer.json.
fs::path tiny_hf_dir(const std::string& name) {
  const fs::path dir = fresh_dir(name);
  lab::export_hf_directory(tiny_model(), dir.string());
  return dir;
}

void truncate_to(const fs::path& file, double share) {
  fs::resize_file(file,
                  static_cast<std::uintmax_t>(static_cast<double>(fs::file_size(file)) * share));
}

TEST(BadInput, UnknownPresetNamesTheChoices) {
  for (const auto& program : kLoading)
    expect_one_line_error(run(program, {"--model", "nosuch"}), program,
                          "--model: 'nosuch' is neither a preset (smollm2, tiny, smollm2-135m");
}

// Shape presets have random weights and no tokenizer: refused at once, before gigabytes of random
// weights are drawn (llama3-8b in fp32 is 32 GB).
TEST(BadInput, ShapePresetCannotGenerateText) {
  for (const auto& program : kGenerating)
    expect_one_line_error(run(program, {"--model", "llama3-8b"}), program,
                          "--model llama3-8b: a shape preset has random weights and no tokenizer");
}

// CLI11's exit codes: 109 for an unexpected argument, 105 for a value its check rejects (a range
// check rejects a word too), 104 for a value that does not convert. The line names the flag.
TEST(BadInput, UnknownFlag) {
  for (const auto& program : kLoading) {
    const auto r = run(program, {"--no-such-flag"});
    expect_one_line_error(r, program, "--no-such-flag", 109);
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
}

TEST(BadInput, OutOfRangeValueNamesTheFlagAndTheRange) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--steps", "0"}, "--steps: Value 0 not in range"},
      {{"--steps", "100001"}, "--steps: Value 100001 not in range"},
      {{"--threads", "-1"}, "--threads: Value -1 not in range"}};
  for (const auto& program : kGenerating)
    for (const auto& [args, fragment] : cases) {
      const auto r = run(program, args);
      expect_one_line_error(r, program, fragment, 105);
      // The range itself; CLI11 versions word it "1 to 100000" or "[1 - 100000]".
      EXPECT_NE(r.err.find(args[0] == "--steps" ? "100000" : "4096"), std::string::npos) << r.err;
      EXPECT_TRUE(r.out.empty()) << r.out;
    }
  expect_one_line_error(run("ch04_kv_cache", {"--mask", "sideways"}), "ch04_kv_cache",
                        "--mask: sideways not in {causal,bidirectional}", 105);
  expect_one_line_error(run("ch04_kv_cache", {"--cache-tokens", "-1"}), "ch04_kv_cache",
                        "--cache-tokens: Value -1 not in range", 105);
}

TEST(BadInput, NonNumericValueNamesTheFlag) {
  for (const auto& program : kGenerating) {
    expect_one_line_error(run(program, {"--steps", "many"}), program,
                          "--steps: Value many not in range", 105);
    expect_one_line_error(run(program, {"--seed", "lucky"}), program,
                          "Could not convert: --seed = lucky", 104);
  }
  expect_one_line_error(run("ch05_sampling_and_metrics", {"--temperature", "warm"}),
                        "ch05_sampling_and_metrics", "--temperature", 104);
}

// The sampler's ranges are checked by lab::validate, which names the flag and the rule, before the
// model loads.
TEST(BadInput, SamplerSettingsOutOfRange) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--temperature", "-1"}, "--temperature"},
      {{"--top-k", "-2"}, "--top-k"},
      {{"--top-p", "0"}, "--top-p"},
      {{"--top-p", "1.5"}, "--top-p"},
      {{"--min-p", "2"}, "--min-p"},
      {{"--repetition-penalty", "0"}, "--repetition-penalty"},
      {{"--temperature", "nan"}, "--temperature"}};
  for (const auto& [args, flag] : cases) {
    const auto r = run("ch05_sampling_and_metrics", args);
    expect_one_line_error(r, "ch05_sampling_and_metrics", flag);
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
}

// A GGUF cut short anywhere (a partial download) or that is not a GGUF at all.
TEST(BadInput, TruncatedOrForeignGgufFile) {
  const fs::path dir = fresh_dir("gguf");
  const fs::path file = dir / "tiny.gguf";
  const std::vector<std::uint8_t> bytes = lab::llama_gguf_writer(tiny_model()).serialize();
  for (double share : {0.0, 0.001, 0.02, 0.5, 0.999}) {
    std::ofstream(file, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(static_cast<double>(bytes.size()) * share));
    for (const auto& program : kGenerating)
      expect_one_line_error(run(program, {"--model", file.string()}), program, "GGUF '");
  }
  std::ofstream(file) << "<html>404 Not Found</html>";  // what a failed download often leaves
  expect_one_line_error(run("ch04_kv_cache", {"--model", file.string()}), "ch04_kv_cache",
                        "GGUF '");
  // And the whole file still works: the errors above come from the damage, not the writer.
  std::ofstream(file, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  EXPECT_EQ(run("ch04_kv_cache", {"--model", file.string(), "--steps", "2"}).exit_code, 0);
  fs::remove_all(dir);
}

TEST(BadInput, NotAModelPath) {
  const fs::path dir = fresh_dir("not_a_model");
  std::ofstream(dir / "notes.txt") << "hello";
  expect_one_line_error(run("ch04_kv_cache", {"--model", (dir / "notes.txt").string()}),
                        "ch04_kv_cache", "is a file but not a .gguf");
  expect_one_line_error(run("ch04_kv_cache", {"--model", (dir / "missing.gguf").string()}),
                        "ch04_kv_cache", "is neither a preset");
  fs::remove_all(dir);
}

TEST(BadInput, HfDirectoryMissingFiles) {
  {
    const fs::path dir = tiny_hf_dir("no_config");
    fs::remove(dir / "config.json");
    expect_one_line_error(run("ch04_kv_cache", {"--model", dir.string()}), "ch04_kv_cache",
                          "has no config.json");
    fs::remove_all(dir);
  }
  {
    const fs::path dir = tiny_hf_dir("no_weights");
    fs::remove(dir / "model.safetensors");
    expect_one_line_error(run("ch04_kv_cache", {"--model", dir.string()}), "ch04_kv_cache",
                          "has neither model.safetensors nor model.safetensors.index.json");
    fs::remove_all(dir);
  }
  {
    // A model whose vocabulary is not the byte one, exported without a tokenizer.
    lab::ModelConfig c = lab::preset("tiny");
    c.vocab_size = 300;
    lab::LoadedModel m;
    m.weights = lab::random_weights(c, 3);
    const fs::path dir = fresh_dir("no_tokenizer");
    lab::export_hf_directory(m, dir.string());
    ASSERT_FALSE(fs::exists(dir / "tokenizer.json"));
    for (const auto& program : kGenerating)
      expect_one_line_error(
          run(program, {"--model", dir.string()}), program,
          "the model has no tokenizer (an HF directory needs its tokenizer.json)");
    fs::remove_all(dir);
  }
}

TEST(BadInput, HfDirectoryMalformedFiles) {
  const fs::path dir = tiny_hf_dir("malformed");
  const std::string model = dir.string();
  auto expect_error = [&](const std::string& fragment) {
    expect_one_line_error(run("ch04_kv_cache", {"--model", model}), "ch04_kv_cache", fragment);
  };
  // config.json cut short, then with a value of the wrong kind.
  const std::string config = [&] {
    std::ifstream in(dir / "config.json");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  truncate_to(dir / "config.json", 0.5);
  expect_error("config.json' is not valid JSON");
  auto j = nlohmann::json::parse(config);
  j["hidden_size"] = 64.5;
  std::ofstream(dir / "config.json") << j.dump();
  expect_error("'hidden_size' must be an integer");
  j["hidden_size"] = 64;
  j["intermediate_size"] = 160;  // a shape the weights do not have
  std::ofstream(dir / "config.json") << j.dump();
  expect_error("does not have the shape config.json implies");
  std::ofstream(dir / "config.json") << config;
  // tokenizer.json cut short.
  truncate_to(dir / "tokenizer.json", 0.5);
  expect_error("tokenizer.json' is not valid JSON");
  // model.safetensors cut short: in the data, in the header, and before the header's length.
  fs::remove_all(dir);
  for (double share : {0.9, 0.01}) {
    const fs::path d = tiny_hf_dir("malformed_weights");
    truncate_to(d / "model.safetensors", share);
    expect_one_line_error(run("ch04_kv_cache", {"--model", d.string()}), "ch04_kv_cache",
                          "safetensors");
    fs::remove_all(d);
  }
  const fs::path d = tiny_hf_dir("tiny_weights");
  fs::resize_file(d / "model.safetensors", 5);
  expect_one_line_error(run("ch04_kv_cache", {"--model", d.string()}), "ch04_kv_cache",
                        "safetensors");
  fs::remove_all(d);
}

// --model smollm2 before scripts/fetch_model.sh: says where it looked and how to get the file.
TEST(BadInput, RealModelNotFetched) {
  const fs::path empty = fresh_dir("empty_cache");
  for (const auto& program : kGenerating) {
    const auto r = run_program_with(program, {"--model", "smollm2", "--threads", "1"},
                                    {"LAB_MODEL_DIR=" + empty.string()});
    expect_one_line_error(r, program,
                          "the SmolLM2 model is not in the cache (" + empty.string() +
                              "/SmolLM2-135M-Instruct.Q4_1.gguf): run scripts/fetch_model.sh");
  }
  fs::remove_all(empty);
}

TEST(BadInput, TokenIdsOutsideTheVocabulary) {
  const std::string program = "ch02_teacher_forcing";
  expect_one_line_error(run(program, {"--tokens", "256,72,999"}), program,
                        "--tokens: id 999 is outside the vocabulary (0..257)");
  expect_one_line_error(run(program, {"--tokens", "256,abc"}), program,
                        "--tokens: 'abc' is not a token id (expected e.g. 256,72,105)");
}

// The results cannot be written: the run happened, but the exit status says the file is missing.
TEST(BadInput, UnwritableJsonPath) {
  const fs::path missing = fs::path(::testing::TempDir()) / "lab_no_such_dir" / "out.json";
  const auto r = run("ch04_kv_cache", {"--json", missing.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err,
            "ch04_kv_cache: error: --json: cannot open '" + missing.string() + "' for writing\n");
}

// tiny holds 256 positions. A prompt longer than that, or a prompt and --steps that together need
// more, is refused before the first token: no text that stops half-way, no silent truncation.
TEST(BadInput, PromptLongerThanTheContext) {
  const std::string long_prompt(300, 'x');
  for (const auto& program : kGenerating) {
    const auto r = run(program, {"--prompt", long_prompt});
    expect_one_line_error(r, program, "the prompt (301 tokens) and --steps");
    EXPECT_NE(r.err.find("the model's is 256 (shorten the prompt or lower --steps)"),
              std::string::npos)
        << r.err;
    expect_one_line_error(run(program, {"--prompt", "Once upon a time", "--steps", "250"}), program,
                          "need a context of 266 tokens, the model's is 256");
  }
  // The largest generation that fits runs to the end.
  EXPECT_EQ(run("ch04_kv_cache", {"--prompt", "Once upon a time", "--steps", "240"}).exit_code, 0);
  // Chapter 4's own cache can be made too small for the generation.
  expect_one_line_error(run("ch04_kv_cache", {"--cache-tokens", "4"}), "ch04_kv_cache",
                        "--cache-tokens: the prompt (17 tokens) and 16 new tokens need 32 cache "
                        "slots, the cache holds 4");
}

// The CUDA chapters without a GPU: exit 77 (CTest's "skipped") and one line, whatever the
// machine. CUDA_VISIBLE_DEVICES hides every GPU where there is one.
TEST(BadInput, NoGpuExits77WithOneLine) {
  int built = 0;
  for (const std::string program : {"ch06_cuda_naive", "ch07_cublas", "ch08_cuda_kv_cache"}) {
    if (!program_exists(program)) continue;
    ++built;
    for (const std::string hide : {"CUDA_VISIBLE_DEVICES=", "CUDA_VISIBLE_DEVICES=-1"}) {
      SCOPED_TRACE(program + " with " + hide);
      const auto r = run_program_with(program, {}, {hide}, 120);
      EXPECT_FALSE(r.timed_out);
      EXPECT_EQ(r.exit_code, 77) << r.out << r.err;
      EXPECT_EQ(line_count(r.err), 1) << r.err;
      EXPECT_EQ(r.err.rfind(program + ": no CUDA GPU found (", 0), 0u) << r.err;
      EXPECT_TRUE(r.out.empty()) << r.out;
    }
  }
  if (built == 0) GTEST_SKIP() << "no CUDA chapter is built here (no nvcc)";
}

// Chapter 8's chat flags are checked before the GPU is looked for, so these hold on any machine.
TEST(BadInput, Ch08ChatFlags) {
  const std::string program = "ch08_cuda_kv_cache";
  if (!program_exists(program)) GTEST_SKIP() << "ch08 is not built (no nvcc)";
  expect_one_line_error(run_program_with(program, {"--chat", "hi", "--temperature", "-1"}), program,
                        "--temperature");
  expect_one_line_error(run_program_with(program, {"--chat", "hi", "--top-p", "2"}), program,
                        "--top-p");
  expect_one_line_error(run_program_with(program, {"--chat", "hi", "--precision", "fp8"}), program,
                        "--precision: fp8 not in {fp32,bf16}", 105);
  expect_one_line_error(run_program_with(program, {"--chat", "hi", "--max-new-tokens", "0"}),
                        program, "--max-new-tokens: Value 0 not in range", 105);
  expect_one_line_error(run_program_with(program, {"--chat", "hi", "--bench"}), program,
                        "--bench excludes --chat", 108);
}

// With a GPU: chapter 8 refuses a chat longer than the model's context, and a shape preset.
TEST(BadInput, Ch08ChatLongerThanTheContext) {
  const std::string program = "ch08_cuda_kv_cache";
  if (!program_exists(program)) GTEST_SKIP() << "ch08 is not built (no nvcc)";
  const auto r = run_program_with(program, {"--chat", "hi", "--max-new-tokens", "300"});
  if (r.exit_code == lab::kExitNoDevice) GTEST_SKIP() << "no CUDA GPU";
  expect_one_line_error(r, program, "and --max-new-tokens 300 need a context of");
  EXPECT_NE(r.err.find("the model's is 256"), std::string::npos) << r.err;
  expect_one_line_error(run_program_with(program, {"--prompt", std::string(300, 'x')}), program,
                        "need a context of");
  expect_one_line_error(run_program_with(program, {"--chat", "hi", "--model", "llama3-8b"}),
                        program, "a shape preset has random weights and no tokenizer");
}

}  // namespace
