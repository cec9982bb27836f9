#pragma once
/// \file
/// \brief Tensor parallelism on the CPU (chapter 12): each rank's partial output of a block's two
/// halves, computed in fp64 from its shard, and a whole forward pass that sums them by hand (the
/// all-reduce). The oracle for the sharding arithmetic of common/tensor_parallel.hpp.

#include <span>

#include "common/tensor_parallel.hpp"
#include "cpu_reference/layers.hpp"

namespace lab::cpu {

/// Rank `shard`'s partial output of the attention half of a block: its heads' attention of the
/// normed input h (n, D) at positions 0..n−1 (causal), multiplied by its o_proj columns. (n, D).
/// Summed over the ranks it is o_proj(attention(h)) of the unsplit block.
Matrix<double> attention_partial(const ModelConfig& config, const LayerShard& weights,
                                 const TensorParallelShard& shard, const Matrix<double>& h);

/// Rank `shard`'s partial output of the MLP half: down_r(silu(gate_r h) ⊙ up_r h). (n, D).
Matrix<double> mlp_partial(const LayerShard& weights, const TensorParallelShard& shard,
                           const Matrix<double>& h);

/// Teacher-forced logits (n, V) of `tokens`, every block split over `world_size` ranks and the
/// ranks' partial sums added in rank order, in fp64. Equals Transformer<double>::forward up to
/// the reordering of the o_proj and down_proj sums.
Matrix<double> tensor_parallel_forward(const ModelWeights& weights, int world_size,
                                       std::span<const int> tokens);

}  // namespace lab::cpu
