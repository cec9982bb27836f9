// ctest-labels: model
// SmolLM2-135M-Instruct from its Q4_1 GGUF: config, tensor types, weights against llama.cpp's own
// dequantizer (gguf-py; tests/fixtures/smollm2_gguf_rows.json, made by
// scripts/hf_gguf_reference_fixture.py) and the GGUF → HF directory → loader round trip, bit for
// bit. Skips when the model is not in the cache (scripts/fetch_model.sh).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/hf_export.hpp"
#include "common/model_source.hpp"

namespace {

#define SKIP_WITHOUT_MODEL()                                                  \
  if (!std::filesystem::exists(lab::smollm2_gguf_path()))                     \
  GTEST_SKIP() << "SmolLM2 is not in the cache (" << lab::smollm2_gguf_path() \
               << "): run scripts/fetch_model.sh to enable the real-model tests"

const lab::LoadedModel& smollm2() {
  static const lab::LoadedModel m = lab::load_model("smollm2", 0);
  return m;
}

TEST(RealModel, ConfigMatchesSmolLm2) {
  SKIP_WITHOUT_MODEL();
  const auto& c = smollm2().weights.config;
  const auto want = lab::preset("smollm2-135m");  // HF config.json values
  EXPECT_EQ(c.vocab_size, want.vocab_size);
  EXPECT_EQ(c.hidden_size, want.hidden_size);
  EXPECT_EQ(c.intermediate_size, want.intermediate_size);
  EXPECT_EQ(c.num_layers, want.num_layers);
  EXPECT_EQ(c.num_heads, want.num_heads);
  EXPECT_EQ(c.num_kv_heads, want.num_kv_heads);
  EXPECT_EQ(c.head_dim, want.head_dim);
  EXPECT_EQ(c.max_seq_len, want.max_seq_len);
  EXPECT_EQ(c.rope_theta, want.rope_theta);
  EXPECT_FLOAT_EQ(c.rms_norm_eps, 1e-5f);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_id, 2);
  EXPECT_EQ(c.parameter_count(), 134515008);
  EXPECT_EQ(smollm2().weights.tensors.size(), 272u);
  EXPECT_NE(smollm2().source.find("210 Q4_1"), std::string::npos) << smollm2().source;
  EXPECT_NE(smollm2().source.find("1 Q8_0"), std::string::npos) << smollm2().source;
}

TEST(RealModel, WeightsMatchLlamaCppsDequantizer) {
  SKIP_WITHOUT_MODEL();
  std::ifstream in(std::string(LAB_SOURCE_DIR) + "/tests/fixtures/smollm2_gguf_rows.json");
  ASSERT_TRUE(in);
  const auto fixture = nlohmann::json::parse(in);
  int rows = 0;
  for (const auto& t : fixture["tensors"]) {
    const auto& w = smollm2().weights.at(t["hf_name"].get<std::string>());
    EXPECT_EQ(w.shape, t["shape"].get<std::vector<std::int64_t>>());
    const auto cols = static_cast<std::size_t>(w.shape.back());
    for (const auto& [row, values] : t["rows"].items()) {
      const auto want = values.get<std::vector<float>>();
      const auto r = static_cast<std::size_t>(std::stoi(row));
      const std::vector<float> got(w.data.begin() + r * cols, w.data.begin() + (r + 1) * cols);
      // Both compute q·d + m in fp32 from the same fp16 scales: equal up to fused multiply-add.
      for (std::size_t k = 0; k < cols; ++k)
        ASSERT_NEAR(got[k], want[k], 1e-6f * (1.0f + std::fabs(want[k])))
            << t["hf_name"] << " row " << r << " col " << k;
      ++rows;
    }
  }
  EXPECT_GE(rows, 30);
}

TEST(RealModel, GgufToHfDirectoryAndBackIsBitIdentical) {
  SKIP_WITHOUT_MODEL();
  const auto dir = std::filesystem::temp_directory_path() / "lab_test_smollm2_hf";
  std::filesystem::remove_all(dir);
  lab::export_hf_directory(smollm2(), dir.string());
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json",
                        "tokenizer_config.json", "generation_config.json"})
    EXPECT_TRUE(std::filesystem::exists(dir / f)) << f;
  const auto back = lab::load_model(dir.string(), 0);
  EXPECT_EQ(back.weights.tensors.size(), smollm2().weights.tensors.size());
  for (const auto& [name, t] : smollm2().weights.tensors) {
    const auto& u = back.weights.at(name);
    ASSERT_EQ(u.shape, t.shape) << name;
    ASSERT_EQ(std::memcmp(u.data.data(), t.data.data(), t.data.size() * sizeof(float)), 0) << name;
  }
  EXPECT_EQ(back.weights.config.rope_theta, 100000.0f);
  EXPECT_TRUE(back.weights.config.tie_word_embeddings);
  ASSERT_TRUE(back.tokenizer);
  const std::string chat = smollm2().tokenizer->apply_chat_template({{"user", "Hi 123!"}});
  EXPECT_EQ(back.tokenizer->apply_chat_template({{"user", "Hi 123!"}}), chat);
  EXPECT_EQ(back.tokenizer->encode(chat), smollm2().tokenizer->encode(chat));
  std::filesystem::remove_all(dir);
}

}  // namespace
