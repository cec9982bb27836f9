#pragma once
/// \file
/// \brief Lab 12 interface (frozen): the Megatron split of a Llama block over N GPUs, on the CPU.

#include <span>
#include <vector>

#include "common/tensor_parallel.hpp"
#include "common/weights.hpp"

/// Lab 12: tensor parallelism.
namespace lab12 {

/// What rank `rank` of `world_size` owns: query heads [rank·H/N, (rank+1)·H/N), the key/value heads
/// they read (Hkv/N of them when Hkv >= N; otherwise the one KV head its queries read, replicated
/// on N/Hkv ranks: kv_replicated) and FFN columns [rank·F/N, (rank+1)·F/N). Throws lab::Error when
/// the model does not split over `world_size` ranks (lab::validate_tensor_parallel says which way).
lab::TensorParallelShard plan_shard(const lab::ModelConfig& config, int world_size, int rank);

/// Rank `shard.rank`'s partial sum of block `layer`'s MLP for one normalised token x (D floats), in
/// double: down_r · (silu(gate_r x) ⊙ up_r x), where gate_r and up_r are the rows of gate_proj and
/// up_proj for the rank's FFN columns and down_r the same columns of down_proj. The sum over the
/// ranks is the whole MLP: that sum is the all-reduce.
std::vector<double> mlp_partial(const lab::ModelWeights& weights, int layer,
                                const lab::TensorParallelShard& shard, std::span<const float> x);

}  // namespace lab12
