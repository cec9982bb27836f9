#pragma once
/// \file
/// \brief Shapes of a Llama-family decoder and the course's model presets.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lab {

/// The hyper-parameters of a Llama-family decoder-only Transformer (RMSNorm, RoPE, grouped-query
/// attention, SwiGLU MLP). Names follow the Hugging Face `config.json` of `LlamaForCausalLM`.
struct ModelConfig {
  std::string name;                  ///< preset name or where the model came from
  int vocab_size = 0;                ///< V: rows of the embedding table
  int hidden_size = 0;               ///< D: width of the residual stream
  int intermediate_size = 0;         ///< F: width of the SwiGLU MLP (about 8/3 D)
  int num_layers = 0;                ///< number of Transformer blocks
  int num_heads = 0;                 ///< query heads
  int num_kv_heads = 0;              ///< key/value heads (== num_heads: MHA; 1: MQA; between: GQA)
  int head_dim = 0;                  ///< d_k, width of one head
  int max_seq_len = 0;               ///< longest context the model was trained for
  float rms_norm_eps = 1e-5f;        ///< epsilon inside RMSNorm's square root
  float rope_theta = 10000.0f;       ///< RoPE base: angle of pair i is pos * theta^(-2i/d)
  bool tie_word_embeddings = false;  ///< output projection reuses the embedding table
  int bos_token_id = -1;             ///< -1: the model has none
  int eos_token_id = -1;             ///< -1: the model has none

  /// Query heads that share one key/value head (the GQA group size).
  int group_size() const { return num_heads / num_kv_heads; }
  /// Width of all query heads together (H * d_k).
  int q_dim() const { return num_heads * head_dim; }
  /// Width of all key (or value) heads together (H_kv * d_k).
  int kv_dim() const { return num_kv_heads * head_dim; }
  /// Number of weights, counting a tied output projection once.
  std::int64_t parameter_count() const;
};

/// Checks every invariant the forward pass relies on and throws lab::Error naming the first one
/// that fails (e.g. "num_heads (9) must be a multiple of num_kv_heads (4)").
void validate(const ModelConfig& config);

/// Returns a named preset: "tiny", "smollm2-135m", "llama2-7b", "llama3-8b", "llama2-70b" (shape
/// only: 69 B parameters, for chapter 12's multi-GPU benchmarks). Throws lab::Error
/// listing the known names otherwise.
ModelConfig preset(std::string_view name);

/// Names accepted by preset().
std::vector<std::string> preset_names();

/// Refuses up front a generation the model's context cannot hold: the last token generated is never
/// fed back, so `prompt_tokens` + `new_tokens` − 1 positions run. `flag` names the option that set
/// `new_tokens` (e.g. "--steps") in the message.
void require_context(const ModelConfig& config, std::size_t prompt_tokens, int new_tokens,
                     const std::string& flag);

/// One line: "smollm2-135m: V=49152 D=576 F=1536 L=30 H=9 Hkv=3 dk=64 (134.5 M params)".
std::string describe(const ModelConfig& config);

}  // namespace lab
