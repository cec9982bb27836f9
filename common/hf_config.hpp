#pragma once
/// \file
/// \brief Hugging Face `config.json` for LlamaForCausalLM ↔ ModelConfig.

#include <nlohmann/json_fwd.hpp>

#include "common/model_config.hpp"

namespace lab {

/// Reads a LlamaForCausalLM config.json (defaults as in transformers: num_key_value_heads =
/// num_attention_heads, head_dim = hidden_size / num_attention_heads). Rejects what the course's
/// forward pass does not implement (biases, rope_scaling, another activation) with lab::Error.
ModelConfig config_from_hf_json(const nlohmann::json& config);

/// A config.json that transformers loads as LlamaForCausalLM (torch_dtype float32).
nlohmann::json hf_config_json(const ModelConfig& config);

}  // namespace lab
