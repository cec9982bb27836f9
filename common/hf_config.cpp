#include "common/hf_config.hpp"

#include <nlohmann/json.hpp>

#include "common/error.hpp"

namespace lab {

ModelConfig config_from_hf_json(const nlohmann::json& j) {
  auto fail = [](const std::string& problem) { throw Error("config.json: " + problem); };
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
    if (j.value("pretraining_tp", 1) != 1) fail("pretraining_tp other than 1 is not supported");

    ModelConfig c;
    c.name = j.value("_name_or_path", std::string("hf-llama"));
    c.vocab_size = j.at("vocab_size").get<int>();
    c.hidden_size = j.at("hidden_size").get<int>();
    c.intermediate_size = j.at("intermediate_size").get<int>();
    c.num_layers = j.at("num_hidden_layers").get<int>();
    c.num_heads = j.at("num_attention_heads").get<int>();
    c.num_kv_heads = j.value("num_key_value_heads", c.num_heads);
    if (j.contains("head_dim") && !j.at("head_dim").is_null())
      c.head_dim = j.at("head_dim").get<int>();
    else
      c.head_dim = c.num_heads > 0 ? c.hidden_size / c.num_heads : 0;
    c.max_seq_len = j.value("max_position_embeddings", 2048);
    c.rms_norm_eps = j.value("rms_norm_eps", 1e-6f);
    c.rope_theta = j.value("rope_theta", 10000.0f);
    if (j.contains("rope_parameters") && j.at("rope_parameters").is_object()) {
      // transformers 5 may write the RoPE base here instead.
      const auto& rp = j.at("rope_parameters");
      if (rp.value("rope_type", std::string("default")) != "default")
        fail("rope_parameters.rope_type other than \"default\" is not supported");
      c.rope_theta = rp.value("rope_theta", c.rope_theta);
    }
    c.tie_word_embeddings = j.value("tie_word_embeddings", false);
    auto token_id = [&](const char* key) {
      if (!j.contains(key) || j.at(key).is_null()) return -1;
      const auto& v = j.at(key);
      if (v.is_array()) return v.empty() ? -1 : v[0].get<int>();  // a list: the first one
      return v.get<int>();
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
