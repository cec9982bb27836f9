// External reference: Hugging Face transformers' LlamaForCausalLM (code nobody here wrote), run in
// fp32 on the directories this project exports, against our CPU reference on the same token ids.
//
// How the fixtures were made (on the GPU box, which has torch 2.11 and transformers 5.17):
//   ch02_teacher_forcing --model tiny --seed 1234 --export-hf DIR     (tiny: random weights, seed
//   1234) ch02_teacher_forcing --model SmolLM2-135M-Instruct.Q4_1.gguf --export-hf DIR python3
//   scripts/hf_logits_fixture.py DIR tests/fixtures/hf_logits_<model>.json
// The script records torch/transformers versions and its settings (eager attention, TF32 off).
//
// Bound: 1e-4 relative L2 per compared logit vector, the bound for two independent fp32
// implementations of the same network (ours accumulates in a different order from PyTorch's).
// ctest-labels: chapter model
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/compare.hpp"
#include "common/model_source.hpp"
#include "common/weights.hpp"
#include "cpu_reference/transformer.hpp"

namespace {

constexpr double kHfBound = 1e-4;

nlohmann::json load_fixture(const std::string& name) {
  std::ifstream in(std::string(LAB_SOURCE_DIR) + "/tests/fixtures/" + name);
  EXPECT_TRUE(in.good()) << "missing fixture " << name;
  return nlohmann::json::parse(in);
}

std::vector<float> decode_base64_floats(const std::string& text) {
  static const std::string alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::vector<unsigned char> bytes;
  unsigned int buffer = 0;
  int bits = 0;
  for (char c : text) {
    if (c == '=') break;
    const auto v = alphabet.find(c);
    if (v == std::string::npos) continue;
    buffer = (buffer << 6) | static_cast<unsigned int>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push_back(static_cast<unsigned char>((buffer >> bits) & 0xFF));
    }
  }
  std::vector<float> values(bytes.size() / 4);
  std::memcpy(values.data(), bytes.data(), values.size() * 4);  // little-endian, as written
  return values;
}

lab::Tolerance hf_tolerance() {
  return {kHfBound, "issue bound for two fp32 implementations (HF transformers vs ours)"};
}

}  // namespace

TEST(HfReference, TinyMatchesTransformersAtEveryPosition) {
  const auto fixture = load_fixture("hf_logits_tiny.json");
  const lab::ModelWeights weights = lab::random_weights(lab::preset("tiny"), 1234);
  ASSERT_EQ(fixture["model_dir_config"]["vocab_size"], weights.config.vocab_size);
  int prompts = 0;
  for (const auto& p : fixture["prompts"]) {
    const auto ids = p["ids"].get<std::vector<int>>();
    std::vector<float> reference;
    for (const auto& row : p["all_logits"])
      for (double v : row) reference.push_back(static_cast<float>(v));
    const std::vector<float> ours = lab::cpu::teacher_forced_logits(weights, ids);
    const auto r = lab::compare(reference, ours, hf_tolerance(),
                                static_cast<std::size_t>(weights.config.vocab_size));
    EXPECT_TRUE(r.passed) << "prompt " << prompts << ": " << lab::summary(r);
    std::printf("tiny prompt %d (%zu tokens): %s\n", prompts, ids.size(), lab::summary(r).c_str());
    EXPECT_EQ(r.argmax_agreement, 1.0) << "prompt " << prompts;
    // The fp64 oracle is closer still to PyTorch's fp32 than our fp32 is: both errors are rounding.
    const std::vector<double> oracle = lab::cpu::teacher_forced_logits_fp64(weights, ids);
    std::vector<double> reference64(reference.begin(), reference.end());
    EXPECT_TRUE(lab::compare(std::span<const double>(reference64), std::span<const double>(oracle),
                             hf_tolerance())
                    .passed);
    ++prompts;
  }
  EXPECT_EQ(prompts, 5);
}

TEST(HfReference, TinyFixtureIsSensitiveToTheWeights) {
  // The check has teeth: another seed's weights are nowhere near the fixture.
  const auto fixture = load_fixture("hf_logits_tiny.json");
  const lab::ModelWeights other = lab::random_weights(lab::preset("tiny"), 1235);
  const auto& p = fixture["prompts"][0];
  const auto ids = p["ids"].get<std::vector<int>>();
  std::vector<float> reference;
  for (const auto& row : p["all_logits"])
    for (double v : row) reference.push_back(static_cast<float>(v));
  EXPECT_FALSE(
      lab::compare(reference, lab::cpu::teacher_forced_logits(other, ids), hf_tolerance()).passed);
}

TEST(HfReference, SmolLM2MatchesTransformers) {
  const std::string path = lab::smollm2_gguf_path();
  if (!std::filesystem::exists(path))
    GTEST_SKIP() << "SmolLM2 not in the cache: run scripts/fetch_model.sh";
  const auto fixture = load_fixture("hf_logits_smollm2.json");
  const lab::LoadedModel model = lab::load_model("smollm2", 0);
  const lab::cpu::Transformer<float> transformer(model.weights);
  const auto V = static_cast<std::size_t>(model.weights.config.vocab_size);
  int prompts = 0;
  for (const auto& p : fixture["prompts"]) {
    const auto ids = p["ids"].get<std::vector<int>>();
    // Our own tokenizer must produce the ids HF tokenizers gave for the same text.
    if (p.contains("text")) EXPECT_EQ(model.tokenizer->encode(p["text"].get<std::string>()), ids);
    const std::vector<float> ours = lab::cpu::to_floats(transformer.forward(ids));  // (T, V)
    const std::vector<float> last_reference =
        decode_base64_floats(p["last_logits_f32_le_b64"].get<std::string>());
    ASSERT_EQ(last_reference.size(), V);
    const std::span<const float> last_ours(ours.data() + (ids.size() - 1) * V, V);
    const auto r = lab::compare(last_reference, last_ours, hf_tolerance(), V);
    EXPECT_TRUE(r.passed) << "prompt " << prompts << " last position: " << lab::summary(r);
    std::printf("SmolLM2 prompt %d (%zu tokens), last position: %s\n", prompts, ids.size(),
                lab::summary(r).c_str());
    // Every position: the same argmax, and the same top-5 logits within the bound.
    for (const auto& pos : p["positions"]) {
      const auto t = pos["pos"].get<std::size_t>();
      const std::span<const float> row(ours.data() + t * V, V);
      const auto best = static_cast<int>(std::max_element(row.begin(), row.end()) - row.begin());
      EXPECT_EQ(best, pos["argmax"].get<int>()) << "prompt " << prompts << " position " << t;
      const auto top_ids = pos["top5_ids"].get<std::vector<int>>();
      const auto top_logits = pos["top5_logits"].get<std::vector<double>>();
      for (std::size_t k = 0; k < top_ids.size(); ++k)
        EXPECT_NEAR(row[static_cast<std::size_t>(top_ids[k])], top_logits[k],
                    1e-3 * (1.0 + std::abs(top_logits[k])))
            << "prompt " << prompts << " position " << t;
    }
    ++prompts;
  }
  EXPECT_EQ(prompts, 5);
}
