#include "common/model_config.hpp"

#include <cstdio>

#include "common/error.hpp"

namespace lab {

std::int64_t ModelConfig::parameter_count() const {
  const std::int64_t D = hidden_size, F = intermediate_size, V = vocab_size;
  const std::int64_t attention = D * q_dim() + 2 * D * kv_dim() + std::int64_t{q_dim()} * D;
  const std::int64_t mlp = 3 * D * F;
  const std::int64_t norms = 2 * D;
  const std::int64_t embeddings = V * D * (tie_word_embeddings ? 1 : 2);
  return num_layers * (attention + mlp + norms) + D /* final norm */ + embeddings;
}

void validate(const ModelConfig& c) {
  auto positive = [](const char* field, int value) {
    if (value <= 0)
      throw Error(std::string(field) + " must be positive, got " + std::to_string(value));
  };
  positive("vocab_size", c.vocab_size);
  positive("hidden_size", c.hidden_size);
  positive("intermediate_size", c.intermediate_size);
  positive("num_layers", c.num_layers);
  positive("num_heads", c.num_heads);
  positive("num_kv_heads", c.num_kv_heads);
  positive("head_dim", c.head_dim);
  positive("max_seq_len", c.max_seq_len);
  if (c.num_heads % c.num_kv_heads != 0)
    throw Error("num_heads (" + std::to_string(c.num_heads) +
                ") must be a multiple of num_kv_heads (" + std::to_string(c.num_kv_heads) + ")");
  if (c.head_dim % 2 != 0)
    throw Error("head_dim (" + std::to_string(c.head_dim) + ") must be even: RoPE rotates pairs");
  if (c.head_dim * c.num_heads != c.hidden_size)
    throw Error("head_dim * num_heads (" + std::to_string(c.head_dim) + " * " +
                std::to_string(c.num_heads) + ") must equal hidden_size (" +
                std::to_string(c.hidden_size) + ")");
  if (!(c.rms_norm_eps > 0.0f)) throw Error("rms_norm_eps must be positive");
  if (!(c.rope_theta > 1.0f)) throw Error("rope_theta must be greater than 1");
  if (c.bos_token_id >= c.vocab_size || c.eos_token_id >= c.vocab_size)
    throw Error("bos/eos token id outside the vocabulary");
}

ModelConfig preset(std::string_view name) {
  ModelConfig c;
  c.name = std::string(name);
  if (name == "tiny") {
    // Random weights from a seed; a byte-level vocabulary (256 bytes + <bos> + <eos>). Small enough
    // for every test, yet it has everything the real models have: GQA, tied=false, odd vocab.
    c.vocab_size = 258;
    c.hidden_size = 64;
    c.intermediate_size = 176;
    c.num_layers = 2;
    c.num_heads = 4;
    c.num_kv_heads = 2;
    c.head_dim = 16;
    c.max_seq_len = 256;
    c.rope_theta = 10000.0f;
    c.bos_token_id = 256;
    c.eos_token_id = 257;
  } else if (name == "smollm2-135m" || name == "smollm2") {
    // HuggingFaceTB/SmolLM2-135M-Instruct config.json.
    c.name = "smollm2-135m";
    c.vocab_size = 49152;
    c.hidden_size = 576;
    c.intermediate_size = 1536;
    c.num_layers = 30;
    c.num_heads = 9;
    c.num_kv_heads = 3;
    c.head_dim = 64;
    c.max_seq_len = 8192;
    c.rope_theta = 100000.0f;
    c.tie_word_embeddings = true;
    c.bos_token_id = 1;
    c.eos_token_id = 2;
  } else if (name == "llama2-7b") {
    c.vocab_size = 32000;
    c.hidden_size = 4096;
    c.intermediate_size = 11008;
    c.num_layers = 32;
    c.num_heads = 32;
    c.num_kv_heads = 32;
    c.head_dim = 128;
    c.max_seq_len = 4096;
    c.rope_theta = 10000.0f;
    c.bos_token_id = 1;
    c.eos_token_id = 2;
  } else if (name == "llama2-70b") {
    // Llama-2-70B's shape (meta-llama/Llama-2-70b-hf config.json), random weights: 140 GB in bf16,
    // more than one H100 holds, which is what chapter 12's tensor parallelism is for.
    c.vocab_size = 32000;
    c.hidden_size = 8192;
    c.intermediate_size = 28672;
    c.num_layers = 80;
    c.num_heads = 64;
    c.num_kv_heads = 8;
    c.head_dim = 128;
    c.max_seq_len = 4096;
    c.rope_theta = 10000.0f;
    c.rms_norm_eps = 1e-5f;
    c.bos_token_id = 1;
    c.eos_token_id = 2;
  } else if (name == "llama3-8b") {
    c.vocab_size = 128256;
    c.hidden_size = 4096;
    c.intermediate_size = 14336;
    c.num_layers = 32;
    c.num_heads = 32;
    c.num_kv_heads = 8;
    c.head_dim = 128;
    c.max_seq_len = 8192;
    c.rope_theta = 500000.0f;
    c.bos_token_id = 128000;
    c.eos_token_id = 128001;
  } else {
    std::string allowed;
    for (const std::string& n : preset_names()) allowed += (allowed.empty() ? "" : ", ") + n;
    throw Error("unknown model preset '" + std::string(name) + "' (allowed: " + allowed + ")");
  }
  validate(c);
  return c;
}

void require_context(const ModelConfig& c, std::size_t prompt_tokens, int new_tokens,
                     const std::string& flag) {
  const std::size_t positions = prompt_tokens + static_cast<std::size_t>(new_tokens) - 1;
  require(positions <= static_cast<std::size_t>(c.max_seq_len),
          "the prompt (" + std::to_string(prompt_tokens) + " tokens) and " + flag + " " +
              std::to_string(new_tokens) + " need a context of " + std::to_string(positions) +
              " tokens, the model's is " + std::to_string(c.max_seq_len) +
              " (shorten the prompt or lower " + flag + ")");
}

std::vector<std::string> preset_names() {
  return {"tiny", "smollm2-135m", "llama2-7b", "llama3-8b", "llama2-70b"};
}

std::string describe(const ModelConfig& c) {
  char buffer[256];
  std::snprintf(buffer, sizeof buffer, "%s: V=%d D=%d F=%d L=%d H=%d Hkv=%d dk=%d (%.1f M params)",
                c.name.c_str(), c.vocab_size, c.hidden_size, c.intermediate_size, c.num_layers,
                c.num_heads, c.num_kv_heads, c.head_dim,
                static_cast<double>(c.parameter_count()) / 1e6);
  return buffer;
}

}  // namespace lab
