// config.json values of the wrong kind: regression tests for what the fuzzer found (a float such
// as 8.752e+109 converted to int was undefined behaviour) and its neighbours.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "common/error.hpp"
#include "common/hf_config.hpp"

namespace {

nlohmann::json tiny_config() {
  return lab::hf_config_json(lab::preset("tiny"));
}

void expect_error(const nlohmann::json& j, const std::string& fragment) {
  try {
    (void)lab::config_from_hf_json(j);
    ADD_FAILURE() << "no error for " << j.dump();
  } catch (const lab::Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(HfConfig, RoundTripOfAPreset) {
  const auto c = lab::config_from_hf_json(tiny_config());
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.num_kv_heads, 2);
}

TEST(HfConfig, FuzzerFindingHugeFloatForAnInteger) {
  auto j = tiny_config();
  j["hidden_size"] = 8.752e109;
  expect_error(j, "'hidden_size' must be an integer");
}

TEST(HfConfig, NonIntegersAndOutOfRangeIntegersAreErrors) {
  for (const char* key :
       {"vocab_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
        "num_key_value_heads", "head_dim", "max_position_embeddings", "bos_token_id"}) {
    auto j = tiny_config();
    j[key] = 64.5;
    expect_error(j, key);
    j[key] = 4294967296LL;  // 2^32: does not fit an int
    expect_error(j, key);
    j[key] = -9223372036854775807LL;
    expect_error(j, "");
    j[key] = "64";
    expect_error(j, key);
  }
  auto j = tiny_config();
  j["eos_token_id"] = nlohmann::json::array({1e300});
  expect_error(j, "eos_token_id");
}

TEST(HfConfig, FloatsMustBeFiniteAndFitAFloat) {
  auto j = tiny_config();
  j["rope_theta"] = 1e300;
  expect_error(j, "rope_theta");
  j = tiny_config();
  j["rms_norm_eps"] = "small";
  expect_error(j, "rms_norm_eps");
  j = tiny_config();
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", -1e200}};
  expect_error(j, "rope_theta");
}
