// Model presets and their validation.
#include <gtest/gtest.h>

#include "common/error.hpp"
#include "common/model_config.hpp"
#include "common/weights.hpp"

TEST(ModelConfig, PresetsValidateAndHaveKnownParameterCounts) {
  // Published parameter counts: Llama-2-7B 6,738,415,616; Llama-3-8B 8,030,261,248;
  // SmolLM2-135M 134,515,008 (tied embeddings).
  EXPECT_EQ(lab::preset("llama2-7b").parameter_count(), 6738415616LL);
  EXPECT_EQ(lab::preset("llama3-8b").parameter_count(), 8030261248LL);
  EXPECT_EQ(lab::preset("smollm2-135m").parameter_count(), 134515008LL);
  // Llama-2-70B: 68,976,648,192 (meta-llama/Llama-2-70b-hf), grouped-query attention 64 / 8.
  const auto big = lab::preset("llama2-70b");
  EXPECT_EQ(big.parameter_count(), 68976648192LL);
  EXPECT_EQ(big.group_size(), 8);
  EXPECT_EQ(big.kv_dim(), 1024);
  for (const auto& name : lab::preset_names())
    EXPECT_NO_THROW(lab::validate(lab::preset(name))) << name;
}

TEST(ModelConfig, RejectsInconsistentShapes) {
  auto expect_error = [](lab::ModelConfig c, const std::string& fragment) {
    try {
      lab::validate(c);
      ADD_FAILURE() << "no error for " << fragment;
    } catch (const lab::Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  lab::ModelConfig c = lab::preset("tiny");
  c.num_kv_heads = 3;
  expect_error(c, "multiple of num_kv_heads");
  c = lab::preset("tiny");
  c.head_dim = 15;
  expect_error(c, "even");
  c = lab::preset("tiny");
  c.hidden_size = 65;
  expect_error(c, "must equal hidden_size");
  c = lab::preset("tiny");
  c.vocab_size = 0;
  expect_error(c, "vocab_size must be positive");
  c = lab::preset("tiny");
  c.eos_token_id = 258;
  expect_error(c, "outside the vocabulary");
  EXPECT_THROW(lab::preset("gpt-5"), lab::Error);
}

TEST(Weights, RandomWeightsAreDeterministicAndValid) {
  const auto c = lab::preset("tiny");
  const auto a = lab::random_weights(c, 42), b = lab::random_weights(c, 42),
             d = lab::random_weights(c, 43);
  EXPECT_NO_THROW(lab::validate(a));
  EXPECT_EQ(a.tensors.size(), 2 + 9 * c.num_layers + 1u);  // embed, norm, lm_head + 9 per layer
  EXPECT_EQ(a.at("model.layers.1.mlp.up_proj.weight").data,
            b.at("model.layers.1.mlp.up_proj.weight").data);
  EXPECT_NE(a.at("model.layers.1.mlp.up_proj.weight").data,
            d.at("model.layers.1.mlp.up_proj.weight").data);
}

TEST(Weights, ValidationNamesTheProblem) {
  auto w = lab::random_weights(lab::preset("tiny"), 1);
  w.tensors.at("model.layers.0.self_attn.k_proj.weight").shape = {64, 64};
  try {
    lab::validate(w);
    ADD_FAILURE();
  } catch (const lab::Error& e) {
    EXPECT_NE(std::string(e.what()).find("k_proj"), std::string::npos);
  }
  w = lab::random_weights(lab::preset("tiny"), 1);
  w.tensors.erase("lm_head.weight");
  EXPECT_THROW(lab::validate(w), lab::Error);
  w = lab::random_weights(lab::preset("tiny"), 1);
  w.tensors.at("model.norm.weight").data[3] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(lab::validate(w), lab::Error);
}
