#pragma once
/// \file
/// \brief The course's one cost model: FLOPs and bytes of every op of a Llama decoder, from shapes.
///
/// Conventions (Appendix B and chapter 1):
/// - A multiply-add is 2 FLOPs. A matmul X(M×K) @ W(K×N) costs 2·M·K·N FLOPs.
/// - Bytes are the fewest a kernel must move through main memory (HBM on a GPU): each input read
///   once, each output written once, all in the storage dtype. Caches are assumed to hold nothing
///   between ops, which is what a large model sees.
/// - Element-wise FLOP counts are stated per op below; they are small next to the matmuls and are
///   there so that the memory-bound ops show up with their true (tiny) intensity.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/dtype.hpp"
#include "common/model_config.hpp"

namespace lab {

/// What one op costs.
struct OpCost {
  std::string name;
  double flops = 0;          ///< floating-point operations
  double bytes_read = 0;     ///< bytes read from main memory
  double bytes_written = 0;  ///< bytes written to main memory

  double bytes() const { return bytes_read + bytes_written; }
  /// Arithmetic intensity I = FLOPs / bytes (算术强度).
  double intensity() const { return bytes() > 0 ? flops / bytes() : 0.0; }
  OpCost& operator+=(const OpCost& other);
};

/// Scales every count (used to multiply one layer by the number of layers).
OpCost scaled(OpCost op, double factor);
/// Sum of a list of ops, named `name`.
OpCost total(const std::vector<OpCost>& ops, std::string name = "total");

/// A machine's two ceilings. The ridge point (critical intensity, 临界值) is peak / bandwidth: ops
/// with a lower intensity are memory-bound, ops above it compute-bound.
struct Hardware {
  std::string name;
  double peak_flops = 0;  ///< FLOP/s for the dtype of interest (dense, no sparsity)
  double bandwidth = 0;   ///< bytes/s of main memory

  double ridge() const { return peak_flops / bandwidth; }
};

/// "h100" (H100 SXM: 989 TFLOP/s bf16/fp16 dense, 3.35 TB/s), "h200" (989, 4.8), "a100"
/// (A100 SXM 80GB: 312, 2.039). Throws lab::Error listing the names otherwise.
Hardware hardware_preset(std::string_view name);
std::vector<std::string> hardware_names();

enum class Bound { Memory, Compute };
std::string to_string(Bound bound);
/// Memory-bound when the intensity is below the ridge point.
Bound classify(double intensity, const Hardware& hw);
/// Roofline: attainable FLOP/s = min(peak, I × bandwidth).
double attainable_flops(double intensity, const Hardware& hw);
/// Roofline time of an op: max(FLOPs / peak, bytes / bandwidth).
double roofline_seconds(const OpCost& op, const Hardware& hw);

/// The seed's worked example (§10.2.2): Y(B×F) = X(B×D) @ W(D×F), reading X and W and writing Y.
OpCost matmul_cost(std::int64_t B, std::int64_t D, std::int64_t F, DType dtype);

/// Smallest batch B at which X(B×D) @ W(D×F) reaches the ridge point, or nothing if it never does
/// (when the ridge is above the largest possible intensity, D·F / ((D + F) · bytes)).
std::optional<std::int64_t> crossover_batch(std::int64_t D, std::int64_t F, DType dtype,
                                            const Hardware& hw);

/// What one forward call processes: `batch` sequences, each adding `new_tokens` tokens after
/// `past_tokens` already in the KV cache. Prefill of T tokens: {B, T, 0}; decode at context L:
/// {B, 1, L}.
struct Workload {
  std::int64_t batch = 1;
  std::int64_t new_tokens = 1;
  std::int64_t past_tokens = 0;
  DType dtype = DType::BF16;     ///< storage dtype of weights, activations and KV cache
  bool all_logits = false;       ///< logits for every new token (teacher forcing) or only the last
  bool fused_attention = false;  ///< FlashAttention-style: scores never reach main memory
};
Workload prefill_workload(std::int64_t prompt_tokens, std::int64_t batch, DType dtype);
Workload decode_workload(std::int64_t context, std::int64_t batch, DType dtype);

/// Keys attended by all new tokens of one sequence under the causal mask:
/// n·p + n(n+1)/2 for n new tokens after p cached ones.
std::int64_t causal_pairs(std::int64_t new_tokens, std::int64_t past_tokens);

/// Ops of one Transformer block, in execution order: attn_norm, q_proj, k_proj, v_proj, rope,
/// attention_scores, softmax, attention_values, o_proj, attn_residual, mlp_norm, gate_proj,
/// up_proj, swiglu, down_proj, mlp_residual. k_proj and v_proj write straight into the KV cache.
std::vector<OpCost> layer_costs(const ModelConfig& config, const Workload& work);

/// Ops of the whole model: embedding, every layer op summed over the layers ("layers.q_proj", ...),
/// final_norm, logits.
std::vector<OpCost> model_costs(const ModelConfig& config, const Workload& work);

/// Bytes of all weights in `dtype` (a tied output projection counted once).
double weight_bytes(const ModelConfig& config, DType dtype);

/// KV cache bytes for one token: 2 (K and V) × layers × kv_heads × head_dim × bytes.
std::int64_t kv_cache_bytes_per_token(const ModelConfig& config, DType dtype);
/// Tokens of context (summed over all sequences) that fit in `memory_bytes` beside the weights;
/// 0 when the weights alone do not fit.
std::int64_t max_cached_tokens(const ModelConfig& config, DType dtype, double memory_bytes);

// --- Tensor parallelism (chapter 12) ------------------------------------------------------------

/// The link that carries the all-reduces, and the latency model of one all-reduce.
/// A ring all-reduce over N GPUs takes 2(N − 1) steps (reduce-scatter, then all-gather); each GPU
/// sends and receives 2(N − 1)/N of the payload. Its time is modelled as NCCL's own tuning model
/// does: base latency + steps × per-step latency + bytes moved per GPU / bandwidth.
struct Interconnect {
  std::string name;
  double bandwidth = 0;         ///< bytes/s one GPU can send (and receive) at the same time
  double base_latency = 0;      ///< seconds every all-reduce pays (launch, synchronisation)
  double step_latency = 0;      ///< seconds per ring step (one hop over the link)
};

/// "nvlink4" (H100/H200 SXM: 18 NVLink-4 links, 450 GB/s each way; latencies 6.6 µs base and
/// 0.6 µs per step, the ring/LL figures of NCCL's tuning table for NVLink), "pcie5" (64 GB/s each
/// way; NCCL's ring/LL PCIe hop latency, 1.0 µs). Throws lab::Error listing the names otherwise.
Interconnect interconnect_preset(std::string_view name);
std::vector<std::string> interconnect_names();

/// Seconds of one ring all-reduce of `payload_bytes` over `world_size` GPUs (0 when N = 1).
double ring_all_reduce_seconds(double payload_bytes, int world_size, const Interconnect& link);

/// What one decode step (one token, batch 1) costs each of N GPUs under tensor parallelism.
struct TensorParallelStepCost {
  int world_size = 1;
  std::int64_t context = 0;         ///< keys attended by the step
  double sharded_weight_bytes = 0;  ///< this GPU's slice of the block matrices (≈ 1/N of them)
  double replicated_bytes = 0;      ///< what every GPU reads whole: norm gains, the embedding row,
                                    ///< the output projection
  double kv_bytes = 0;              ///< this GPU's KV heads at `context` (1/N, or one head when
                                    ///< Hkv < N replicates them)
  double bytes_per_gpu = 0;         ///< the sum: what one GPU streams from HBM per step
  int all_reduces = 0;              ///< 2 per layer (after o_proj and after down_proj)
  double all_reduce_payload = 0;    ///< bytes of one all-reduce: hidden × activation bytes
  double all_reduce_bytes_per_gpu = 0;  ///< per step, each GPU sends 2(N−1)/N of every payload
  double memory_seconds = 0;        ///< bytes_per_gpu / HBM bandwidth
  double all_reduce_seconds = 0;    ///< all_reduces × ring_all_reduce_seconds(payload)
  double step_seconds = 0;          ///< memory + all-reduce: each all-reduce is on the critical
                                    ///< path between two layers, nothing overlaps it
  double tokens_per_second() const { return step_seconds > 0 ? 1.0 / step_seconds : 0.0; }
};

/// The decode step of `config` split over `world_size` GPUs (validated as
/// validate_tensor_parallel does), weights and KV cache in `weight_dtype`, the residual stream
/// (what the all-reduces carry) in `activation_dtype`, norm gains in fp32 as the GPU decoders
/// store them. At N = 1 the bytes are those of lab::cuda::Decoder::decode_bytes.
TensorParallelStepCost tensor_parallel_decode_cost(const ModelConfig& config, int world_size,
                                                   std::int64_t context, DType weight_dtype,
                                                   DType activation_dtype, const Hardware& hw,
                                                   const Interconnect& link);

}  // namespace lab
