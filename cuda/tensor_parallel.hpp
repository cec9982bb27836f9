#pragma once
/// \file
/// \brief Chapter 12's decoder: the chapter 8 decoder split over N GPUs the Megatron-LM / vLLM way
/// (column-parallel q, k, v and gate, up; row-parallel o and down; one all-reduce after each of the
/// two), with an all-reduce that is either NCCL over N GPUs or an emulation of N ranks on one GPU.
///
/// One host thread drives every rank: it queues each rank's kernels on that rank's stream (all
/// launches are asynchronous, so the GPUs run side by side) and issues the N all-reduce calls of a
/// step inside one NCCL group. The decode step is captured as one CUDA graph per GPU, NCCL calls
/// included, the way nccl-tests captures its multi-GPU-per-thread runs.

#include <cuda_runtime.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/tensor_parallel.hpp"
#include "common/timing.hpp"
#include "common/weights.hpp"
#include "cuda/decoder.hpp"

namespace lab::cuda {

/// GPUs the CUDA runtime sees (after CUDA_VISIBLE_DEVICES); 0 when there is none. Never throws.
int visible_gpu_count();

/// A sum over ranks of one fp32 buffer per rank: after it, every rank's buffer holds the sum.
class AllReduce {
 public:
  virtual ~AllReduce() = default;
  virtual std::string name() const = 0;
  virtual int world_size() const = 0;
  /// d_buffers[r] ← Σ_r' d_buffers[r'] for every r, `count` floats each, queued on streams[r]
  /// (rank r's stream, on rank r's device). Launches only: may be captured into CUDA graphs.
  virtual void sum(const std::vector<float*>& d_buffers, std::size_t count,
                   const std::vector<cudaStream_t>& streams) = 0;
};

/// NCCL over `devices` (one rank each), created from this thread with ncclCommInitAll. Sets
/// NCCL_NVLS_ENABLE=0 first: NVLink multicast (NVLS) stays off.
std::unique_ptr<AllReduce> make_nccl_all_reduce(const std::vector<int>& devices);
/// `world_size` ranks on one device and one stream: rank 0's buffer += every other rank's (in rank
/// order), then is copied back to them. The same interface as NCCL's, for testing the sharding
/// on one GPU; all streams passed to sum() must be the same stream.
std::unique_ptr<AllReduce> make_emulated_all_reduce(int world_size);

struct TensorParallelOptions {
  int world_size = 1;
  /// All ranks on the current GPU with make_emulated_all_reduce instead of NCCL over GPUs 0..N−1.
  bool emulate = false;
  DecoderOptions decoder;  ///< precision, KV capacity, GEMV version, longest prefill (chapter 8)
};

class TensorParallelDecoder {
 public:
  /// Splits `weights` over the ranks (common/tensor_parallel.hpp) and uploads each rank's share,
  /// converted to the precision. Throws lab::Error when the shapes do not split, when more GPUs
  /// are asked for than are visible, or when a GPU cannot hold its share.
  TensorParallelDecoder(const ModelWeights& weights, const TensorParallelOptions& options);
  /// Random weights drawn on each GPU for its own share (benchmarks of shapes that one GPU cannot
  /// hold); the same distributions as chapter 8's random decoder, not the same numbers.
  TensorParallelDecoder(const ModelConfig& config, std::uint64_t seed,
                        const TensorParallelOptions& options);
  ~TensorParallelDecoder();
  TensorParallelDecoder(const TensorParallelDecoder&) = delete;
  TensorParallelDecoder& operator=(const TensorParallelDecoder&) = delete;

  const ModelConfig& config() const;
  const TensorParallelOptions& options() const;
  int world_size() const;
  /// "nccl" or "emulated".
  std::string all_reduce_name() const;
  /// What rank r owns.
  const TensorParallelShard& shard(int rank) const;
  /// Tokens in the KV cache (the same on every rank).
  int length() const;
  /// Empties every rank's KV cache.
  void reset();

  /// As lab::cuda::Decoder::forward: the logits (rank 0's copy) of the last token, or of every
  /// token when all_logits.
  std::vector<float> forward(std::span<const int> tokens, bool all_logits = false);
  /// Rank r's copy of the last-token logits of the latest forward. Every rank computes the output
  /// projection from the same all-reduced residual stream, so the copies agree.
  std::vector<float> rank_logits(int rank) const;

  /// As lab::cuda::Decoder::generate_greedy; every rank takes its own argmax (of identical logits),
  /// so no token is ever sent between GPUs. One CUDA graph per GPU when `use_graph`.
  std::vector<int> generate_greedy(std::span<const int> prompt, int max_new_tokens, bool use_graph,
                                   const std::function<bool(int)>& on_token = {});

  /// Device seconds per decode step (rank 0's stream), as lab::cuda::Decoder::time_decode.
  TimingStats time_decode(int steps, int warmup, bool use_graph);
  /// Device seconds (rank 0's stream, CUDA events around the calls) of the 2 × layers all-reduces
  /// of one decode step run back to back on their own: the communication a step must pay.
  TimingStats time_step_all_reduces(int warmup, int repeats);

  /// Bytes one GPU reads in a decode step at `context` (the cost model's bytes_per_gpu).
  double decode_bytes_per_gpu(int context) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lab::cuda
