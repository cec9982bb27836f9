#pragma once
/// \file
/// \brief Model weights in Hugging Face layout and names, independent of where they came from.
///
/// Every loader (random preset, GGUF, safetensors) produces a ModelWeights; every backend (Eigen,
/// CUDA) consumes one. Matrices are row-major [out, in] as in `nn.Linear` (y = x·Wᵀ), so row r of
/// a projection is output feature r. Q and K rows use HF's half-split RoPE pairing (i, i + d/2).

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/model_config.hpp"

namespace lab {

/// A dense fp32 tensor, row-major.
struct Tensor {
  std::vector<std::int64_t> shape;
  std::vector<float> data;

  std::int64_t numel() const;
  /// Rows × columns of a 2-D tensor; throws lab::Error for another rank.
  std::int64_t rows() const;
  std::int64_t cols() const;
};

struct ModelWeights {
  ModelConfig config;
  /// HF names: "model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", ...,
  /// "model.norm.weight", and "lm_head.weight" only when the embeddings are not tied.
  std::map<std::string, Tensor> tensors;

  /// The tensor called `name`; throws lab::Error naming it when missing.
  const Tensor& at(const std::string& name) const;
  /// The output projection: lm_head.weight, or the embedding table when tied.
  const Tensor& output_projection() const;
};

/// "model.layers.<layer>.<suffix>", e.g. layer_tensor_name(3, "mlp.up_proj.weight").
std::string layer_tensor_name(int layer, const std::string& suffix);

/// Every tensor name and shape a Llama model with this config must have, in a fixed order.
std::vector<std::pair<std::string, std::vector<std::int64_t>>> expected_tensors(
    const ModelConfig& config);

/// Checks that exactly the expected tensors exist with the expected shapes and finite values;
/// throws lab::Error naming the first problem.
void validate(const ModelWeights& weights);

/// Random weights for `config` from `seed`: matrices ~ N(0, 1/in_features) scaled by `init_scale`,
/// norm gains ~ 1 + N(0, 0.1²), embeddings ~ N(0, 1). Same seed → same weights on any platform.
ModelWeights random_weights(const ModelConfig& config, std::uint64_t seed, double init_scale = 1.0);

}  // namespace lab
