#pragma once
/// \file
/// \brief Tensor parallelism (chapter 12): which heads and FFN columns each of N GPUs owns, and
/// the per-rank slices of a layer's weights, the way Megatron-LM and vLLM split a Llama block.
///
/// Plain C++ (no Eigen, no CUDA): the CPU reference, the GPU decoder and the cost model all read
/// the same plan.
///
/// The split, per Transformer block, for N ranks:
/// - q_proj, k_proj, v_proj are *column-parallel* (split along their output features, i.e. the
///   rows of the HF [out, in] weight): rank r owns query heads [r·H/N, (r+1)·H/N) and the key/value
///   heads they read, so attention runs on each rank with no communication at all.
/// - o_proj is *row-parallel* (split along its input features, the columns of [out, in]): rank r
///   multiplies its own heads' outputs by its slice and produces a partial sum of the full
///   (n, D) output. An all-reduce (sum) over the ranks completes it.
/// - gate_proj, up_proj are column-parallel by FFN columns [r·F/N, (r+1)·F/N); SwiGLU is
///   element-wise, so each rank applies it to its own columns; down_proj is row-parallel, a second
///   partial sum, a second all-reduce.
/// - Norm gains, the embedding table and the output projection are replicated on every rank.
///
/// Grouped-query attention with fewer KV heads than ranks (Hkv < N): each KV head is *replicated*
/// on N/Hkv ranks (what vLLM does), so every rank still owns exactly one KV head and the query
/// heads that read it. This needs N to be a multiple of Hkv; otherwise a rank's query heads would
/// straddle two KV heads and the plan is rejected.

#include <string>
#include <vector>

#include "common/weights.hpp"

namespace lab {

/// What rank `rank` of `world_size` owns.
struct TensorParallelShard {
  int rank = 0;
  int world_size = 1;
  int first_q_head = 0, q_heads = 0;    ///< query heads [first, first + count)
  int first_kv_head = 0, kv_heads = 0;  ///< key/value heads [first, first + count)
  bool kv_replicated = false;           ///< Hkv < N: this KV head also lives on other ranks
  int first_ffn = 0, ffn = 0;           ///< FFN columns [first, first + count)

  int q_dim(int head_dim) const { return q_heads * head_dim; }
  int kv_dim(int head_dim) const { return kv_heads * head_dim; }
};

/// Throws lab::Error naming the first shape that does not split over `world_size` ranks:
/// world_size < 1, H % N, F % N, Hkv % N (when Hkv ≥ N) or N % Hkv (when Hkv < N).
void validate_tensor_parallel(const ModelConfig& config, int world_size);

/// Rank `rank`'s share of `config` split over `world_size` ranks (validated first).
TensorParallelShard tensor_parallel_shard(const ModelConfig& config, int world_size, int rank);

/// One rank's weights of one block, row-major [out, in] like the HF tensors they are cut from.
struct LayerShard {
  std::vector<float> w_qkv;      ///< [q_dim_r + 2 kv_dim_r, D]: this rank's q, k, v rows stacked
  std::vector<float> wo;         ///< [D, q_dim_r]: the o_proj columns of this rank's heads
  std::vector<float> w_gate_up;  ///< [2 F_r, D]: this rank's gate rows, then its up rows
  std::vector<float> w_down;     ///< [D, F_r]: the down_proj columns of this rank's FFN slice
};

/// Cuts layer `layer` of `weights` for `shard`.
LayerShard shard_layer(const ModelWeights& weights, int layer, const TensorParallelShard& shard);

/// Rows [first, first + count) of a row-major [rows, cols] tensor (a column-parallel slice).
std::vector<float> slice_rows(const Tensor& t, std::int64_t first, std::int64_t count);
/// Columns [first, first + count) of a row-major [rows, cols] tensor (a row-parallel slice).
std::vector<float> slice_columns(const Tensor& t, std::int64_t first, std::int64_t count);

/// One line: "rank 1 of 4: q heads 16..31, kv heads 2..3, FFN columns 7168..14335".
std::string describe(const TensorParallelShard& shard);

}  // namespace lab
