#pragma once
/// \file
/// \brief A GGUF file of architecture "llama" → ModelConfig, HF-layout fp32 weights, tokenizer.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "common/gguf.hpp"
#include "common/model_source.hpp"

namespace lab {

/// The model's shape from the `llama.*` keys (any integer width), the vocabulary size from
/// llama.vocab_size, the token list or token_embd, and tied embeddings when output.weight is
/// absent. Throws lab::Error for a missing required key or another architecture.
ModelConfig config_from_gguf(const GgufFile& file);

/// Undoes llama.cpp's Q/K row permutation for one projection with `n_heads` heads of width
/// `head_dim`: within head h, GGUF row h·d + 2i + c becomes HF row h·d + c·d/2 + i (i < d/2,
/// c ∈ {0, 1}). Rows are `row_bytes` bytes each, so quantized rows can be moved as they are.
void unpermute_qk_rows(std::span<const std::byte> gguf_rows, std::span<std::byte> hf_rows,
                       int n_heads, int head_dim, std::size_t row_bytes);

/// The HF name of a GGUF llama tensor ("blk.3.attn_q.weight" → "model.layers.3.self_attn.
/// q_proj.weight"); empty when the name is not one of the llama tensors.
std::string hf_name_from_gguf(const std::string& gguf_name);

/// Every weight dequantized to fp32, renamed to HF and Q/K un-permuted; checks every tensor's
/// dims against `config` before it reads, and reports missing or unexpected tensors.
ModelWeights weights_from_gguf(const GgufFile& file, const ModelConfig& config);

/// The inverse of unpermute_qk_rows(): HF half-split rows → llama.cpp's interleaved rows.
void permute_qk_rows(std::span<const std::byte> hf_rows, std::span<std::byte> gguf_rows,
                     int n_heads, int head_dim, std::size_t row_bytes);

/// A GGUF writer holding `model` as llama.cpp would store it (llama.* keys, GGUF names, Q/K rows
/// permuted, tokenizer.ggml.* keys when the tokenizer is byte-level BPE or the byte tokenizer).
/// `matrix_type` (F32, F16 or BF16) stores the 2-D tensors; norms stay F32. For tests, fuzz seeds
/// and small synthetic models.
GgufWriter llama_gguf_writer(const LoadedModel& model, GgmlType matrix_type = GgmlType::F32);

/// Config, weights and BPE tokenizer from a llama GGUF file.
LoadedModel load_gguf_model(const std::string& path);

}  // namespace lab
