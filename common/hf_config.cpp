#include "common/hf_config.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/error.hpp"

namespace lab {

namespace {

[[noreturn]] void fail(const std::string& problem) {
  throw Error("config.json: " + problem);
}

// An integer that fits an int. A float, a string or a huge number is an error: converting it
// would be undefined behaviour, not a config (found by the config.json fuzzer).
int as_int(const nlohmann::json& v, const std::string& key) {
  if (v.is_number_unsigned()) {
    const auto x = v.get<std::uint64_t>();
    if (x <= static_cast<std::uint64_t>(std::numeric_limits<int>::max()))
      return static_cast<int>(x);
  } else if (v.is_number_integer()) {
    const auto x = v.get<std::int64_t>();
    if (x >= std::numeric_limits<int>::min() && x <= std::numeric_limits<int>::max())
      return static_cast<int>(x);
  }
  fail("'" + key + "' must be an integer that fits in 32 bits, got " + v.dump());
}

int int_key(const nlohmann::json& j, const char* key) {
  return as_int(j.at(key), key);
}

int int_key(const nlohmann::json& j, const char* key, int fallback) {
  return j.contains(key) && !j.at(key).is_null() ? as_int(j.at(key), key) : fallback;
}

// A finite number within float's range.
float float_key(const nlohmann::json& j, const char* key, float fallback) {
  if (!j.contains(key) || j.at(key).is_null()) return fallback;
  const auto& v = j.at(key);
  if (!v.is_number()) fail("'" + std::string(key) + "' must be a number, got " + v.dump());
  const double x = v.get<double>();
  if (!std::isfinite(x) || std::abs(x) > std::numeric_limits<float>::max())
    fail("'" + std::string(key) + "' is out of range: " + v.dump());
  return static_cast<float>(x);
}

}  // namespace

ModelConfig config_from_hf_json(const nlohmann::json& j) {
  try {
    if (!j.is_object()) fail("not a JSON object");
    bool llama = j.value("model_type", std::string()) == "llama";
    if (j.contains("architectures"))
      for (const auto& a : j.at("architectures")) llama = llama || a == "LlamaForCausalLM";
    if (!llama)
      fail("not a Llama model (model_type must be \"llama\" or the architecture LlamaForCausalLM)");
    if (j.value("hidden_act", std::string("silu")) != "silu")
      fail("hidden_act '" + j.at("hidden_act").get<std::string>() +
           "' is not supported (only silu)");
    if (j.value("attention_bias", false) || j.value("mlp_bias", false))
      fail("attention_bias/mlp_bias are not supported");
    if (j.contains("rope_scaling") && !j.at("rope_scaling").is_null())
      fail("rope_scaling is not supported");
    if (int_key(j, "pretraining_tp", 1) != 1) fail("pretraining_tp other than 1 is not supported");

    ModelConfig c;
    c.name = j.value("_name_or_path", std::string("hf-llama"));
    c.vocab_size = int_key(j, "vocab_size");
    c.hidden_size = int_key(j, "hidden_size");
    c.intermediate_size = int_key(j, "intermediate_size");
    c.num_layers = int_key(j, "num_hidden_layers");
    c.num_heads = int_key(j, "num_attention_heads");
    c.num_kv_heads = int_key(j, "num_key_value_heads", c.num_heads);
    c.head_dim = int_key(j, "head_dim", c.num_heads > 0 ? c.hidden_size / c.num_heads : 0);
    c.max_seq_len = int_key(j, "max_position_embeddings", 2048);
    c.rms_norm_eps = float_key(j, "rms_norm_eps", 1e-6f);
    c.rope_theta = float_key(j, "rope_theta", 10000.0f);
    if (j.contains("rope_parameters") && j.at("rope_parameters").is_object()) {
      // transformers 5 may write the RoPE base here instead.
      const auto& rp = j.at("rope_parameters");
      if (rp.value("rope_type", std::string("default")) != "default")
        fail("rope_parameters.rope_type other than \"default\" is not supported");
      c.rope_theta = float_key(rp, "rope_theta", c.rope_theta);
    }
    c.tie_word_embeddings = j.value("tie_word_embeddings", false);
    auto token_id = [&](const char* key) {
      if (!j.contains(key) || j.at(key).is_null()) return -1;
      const auto& v = j.at(key);
      if (v.is_array()) return v.empty() ? -1 : as_int(v[0], key);  // a list: the first one
      return as_int(v, key);
    };
    c.bos_token_id = token_id("bos_token_id");
    c.eos_token_id = token_id("eos_token_id");
    validate(c);
    return c;
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("malformed: ") + e.what());
  }
  return {};
}

nlohmann::json hf_config_json(const ModelConfig& c) {
  nlohmann::json j = {
      {"architectures", {"LlamaForCausalLM"}},
      {"model_type", "llama"},
      {"hidden_size", c.hidden_size},
      {"intermediate_size", c.intermediate_size},
      {"num_hidden_layers", c.num_layers},
      {"num_attention_heads", c.num_heads},
      {"num_key_value_heads", c.num_kv_heads},
      {"head_dim", c.head_dim},
      {"hidden_act", "silu"},
      {"max_position_embeddings", c.max_seq_len},
      {"rms_norm_eps", c.rms_norm_eps},
      {"rope_theta", c.rope_theta},
      {"rope_scaling", nullptr},
      {"attention_bias", false},
      {"attention_dropout", 0.0},
      {"mlp_bias", false},
      {"pretraining_tp", 1},
      {"tie_word_embeddings", c.tie_word_embeddings},
      {"vocab_size", c.vocab_size},
      {"torch_dtype", "float32"},
      {"dtype", "float32"},  // transformers 5 name
      {"use_cache", true},
      {"initializer_range", 0.02},
  };
  j["bos_token_id"] =
      c.bos_token_id >= 0 ? nlohmann::json(c.bos_token_id) : nlohmann::json(nullptr);
  j["eos_token_id"] =
      c.eos_token_id >= 0 ? nlohmann::json(c.eos_token_id) : nlohmann::json(nullptr);
  return j;
}

}  // namespace lab
