#pragma once
/// \file
/// \brief The GPU decoder of chapter 8: prefill with GEMMs, decode with GEMVs, the KV cache on
/// the device, greedy sampling on the device, and a CUDA graph for the decode step.

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/timing.hpp"
#include "common/weights.hpp"
#include "cuda/kernels.hpp"

namespace lab::cuda {

/// Storage of weights and KV cache. Arithmetic, activations and logits are fp32 in both.
enum class DecoderPrecision { FP32, BF16 };
std::string to_string(DecoderPrecision precision);
/// "fp32" or "bf16"; throws lab::Error naming the allowed values.
DecoderPrecision parse_decoder_precision(const std::string& text);

struct DecoderOptions {
  DecoderPrecision precision = DecoderPrecision::BF16;
  int capacity = 1024;  ///< tokens the KV cache holds
  /// The decode GEMV (o_proj, down_proj; unfused: all). V7Slab also switches the fused GEMVs to
  /// their slab kernels (gemv.cu).
  GemvVersion gemv = GemvVersion::V5Pdl;
  int max_prefill = 0;  ///< longest prefill call (0: capacity)
  /// Chunked prefill: a prompt runs in calls of at most this many tokens (0: one call, which
  /// must fit in max_prefill). 1 runs it through the decode step's kernels, no GEMM.
  int prefill_chunk = 0;
  /// Decode step with the fused GEMVs (RMSNorm, RoPE, KV append and SwiGLU folded in; 6 kernels a
  /// layer instead of 12) where the shapes allow (decode_gemv_fusable).
  bool fuse = true;
  /// Decode-step kernels launched with programmatic dependent launch (cuda/launch.cuh).
  bool pdl = true;
  /// Decode attention: split-KV v3 (all of a chunk's loads at once), 4 (v3, and it prefetches
  /// o_proj's weights into L2 while it waits on memory) or 2 (attention_cached).
  int split_kv_version = 3;
};

/// One line of a decode-step profile: a kernel of the step (or a launcher's pair of kernels),
/// its launches per step and its device time per step, summed over the layers.
struct StepKernelTime {
  std::string name;    ///< the kernel, or the ops it fuses ("qkv_proj + norm + rope + append")
  int launches = 0;    ///< launches per step (all layers)
  double seconds = 0;  ///< device seconds per step, summed over its launches (median of repeats)
};

class Decoder {
 public:
  /// Uploads `weights`, converted to the options' precision.
  Decoder(const ModelWeights& weights, const DecoderOptions& options);
  /// Random weights drawn on the device (benchmarks of large shapes): matrices ~ N(0, 1/in),
  /// norm gains ~ 1 + N(0, 0.1²), embeddings ~ N(0, 1), as lab::random_weights draws them.
  Decoder(const ModelConfig& config, std::uint64_t seed, const DecoderOptions& options);
  ~Decoder();
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  const ModelConfig& config() const;
  const DecoderOptions& options() const;
  /// Tokens in the KV cache.
  int length() const;
  /// Empties the KV cache.
  void reset();

  /// Runs `tokens` at positions length().. (prefill when several, a decode step when one),
  /// appending their keys and values; returns the logits of every token (n, V) when all_logits,
  /// else of the last, (V). Throws lab::Error when the tokens do not fit in the cache.
  std::vector<float> forward(std::span<const int> tokens, bool all_logits = false);

  /// Greedy generation with the argmax on the device: prefill `prompt` (cache must be empty), then
  /// `max_new_tokens` decode steps, each replaying one CUDA graph when `use_graph`. `on_token`
  /// (optional) sees each token as soon as it is chosen (one small copy and sync per token) and
  /// may return false to stop. Returns the generated tokens.
  std::vector<int> generate_greedy(std::span<const int> prompt, int max_new_tokens, bool use_graph,
                                   const std::function<bool(int)>& on_token = {});

  /// Device seconds per decode step over `steps` greedy steps from the current cache (which must
  /// hold at least one token), after `warmup` steps; the cache is rolled back afterwards.
  TimingStats time_decode(int steps, int warmup, bool use_graph);
  /// Device time of each kernel of one decode step (median over `repeats` steps from the current
  /// cache, rolled back afterwards), with an event between kernels and PDL off. `use_graph`: the
  /// events are nodes of a captured step (no CPU launch gaps in the intervals); otherwise the step
  /// is launched from the host and small kernels' intervals include the launch gaps.
  std::vector<StepKernelTime> profile_decode_step(int repeats, bool use_graph);
  /// Chooses the decode step's kernels on a live decoder (the graph is captured again):
  /// benchmarks compare versions on the same weights and cache.
  void set_decode_kernels(GemvVersion gemv, bool fuse, bool pdl, int split_kv_version = 3);
  /// Device seconds of one prefill of `tokens` into an empty cache (median of `repeats`).
  TimingStats time_prefill(std::span<const int> tokens, int warmup, int repeats);

  /// Bytes one decode step must read at context `context`: every weight matrix once (the
  /// embedding table only one row), plus the keys and values of `context` tokens.
  double decode_bytes(int context) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lab::cuda
