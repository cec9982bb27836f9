#include "common/cost_model.hpp"

#include <algorithm>

#include "common/error.hpp"
#include "common/tensor_parallel.hpp"

namespace lab {

OpCost& OpCost::operator+=(const OpCost& other) {
  flops += other.flops;
  bytes_read += other.bytes_read;
  bytes_written += other.bytes_written;
  return *this;
}

OpCost scaled(OpCost op, double factor) {
  op.flops *= factor;
  op.bytes_read *= factor;
  op.bytes_written *= factor;
  return op;
}

OpCost total(const std::vector<OpCost>& ops, std::string name) {
  OpCost sum{std::move(name)};
  for (const auto& op : ops) sum += op;
  return sum;
}

Hardware hardware_preset(std::string_view name) {
  // Dense (no 2:4 sparsity) fp16/bf16 tensor-core peaks and HBM bandwidth from the datasheets.
  if (name == "h100") return {"H100 SXM", 989e12, 3.35e12};
  if (name == "h200") return {"H200 SXM", 989e12, 4.8e12};
  if (name == "a100") return {"A100 SXM 80GB", 312e12, 2.039e12};
  throw Error("unknown hardware '" + std::string(name) + "' (allowed: h100, h200, a100, custom)");
}

std::vector<std::string> hardware_names() {
  return {"h100", "h200", "a100", "custom"};
}

std::string to_string(Bound bound) {
  return bound == Bound::Memory ? "memory-bound" : "compute-bound";
}

Bound classify(double intensity, const Hardware& hw) {
  return intensity < hw.ridge() ? Bound::Memory : Bound::Compute;
}

double attainable_flops(double intensity, const Hardware& hw) {
  return std::min(hw.peak_flops, intensity * hw.bandwidth);
}

double roofline_seconds(const OpCost& op, const Hardware& hw) {
  return std::max(op.flops / hw.peak_flops, op.bytes() / hw.bandwidth);
}

//! [matmul_cost]
OpCost matmul_cost(std::int64_t B, std::int64_t D, std::int64_t F, DType dtype) {
  const double bytes = static_cast<double>(bytes_per_element(dtype));
  OpCost op{"matmul"};
  op.flops = 2.0 * B * D * F;                             // one multiply and one add per (b, d, f)
  op.bytes_read = bytes * (B * D + D * F);                // read X (B×D) and W (D×F) once
  op.bytes_written = bytes * static_cast<double>(B * F);  // write Y (B×F) once
  return op;
}
//! [matmul_cost]

std::optional<std::int64_t> crossover_batch(std::int64_t D, std::int64_t F, DType dtype,
                                            const Hardware& hw) {
  const double bytes = static_cast<double>(bytes_per_element(dtype));
  // As B grows, I(B) rises monotonically towards D·F / ((D + F)·bytes).
  const double limit = static_cast<double>(D) * F / ((D + F) * bytes);
  if (limit <= hw.ridge()) return std::nullopt;
  std::int64_t lo = 1, hi = 1;
  while (matmul_cost(hi, D, F, dtype).intensity() < hw.ridge()) hi *= 2;
  while (lo < hi) {  // smallest B with I(B) >= ridge
    const std::int64_t mid = lo + (hi - lo) / 2;
    if (matmul_cost(mid, D, F, dtype).intensity() >= hw.ridge())
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

Workload prefill_workload(std::int64_t prompt_tokens, std::int64_t batch, DType dtype) {
  Workload w;
  w.batch = batch;
  w.new_tokens = prompt_tokens;
  w.past_tokens = 0;
  w.dtype = dtype;
  return w;
}

Workload decode_workload(std::int64_t context, std::int64_t batch, DType dtype) {
  Workload w;
  w.batch = batch;
  w.new_tokens = 1;
  w.past_tokens = context;
  w.dtype = dtype;
  return w;
}

std::int64_t causal_pairs(std::int64_t new_tokens, std::int64_t past_tokens) {
  return new_tokens * past_tokens + new_tokens * (new_tokens + 1) / 2;
}

namespace {

void check_workload(const ModelConfig& config, const Workload& w) {
  validate(config);
  require(w.batch >= 1, "batch must be at least 1");
  require(w.new_tokens >= 1, "new_tokens must be at least 1");
  require(w.past_tokens >= 0, "past_tokens must not be negative");
}

// Linear layer on M rows: X(M×K) @ Wᵀ with W stored [N, K] (HF layout).
OpCost linear(std::string name, double M, double K, double N, double bytes) {
  return {std::move(name), 2.0 * M * K * N, bytes * (M * K + K * N), bytes * M * N};
}

}  // namespace

std::vector<OpCost> layer_costs(const ModelConfig& c, const Workload& w) {
  check_workload(c, w);
  const double b = static_cast<double>(bytes_per_element(w.dtype));
  const double M = static_cast<double>(w.batch * w.new_tokens);  // rows through the matmuls
  const double D = c.hidden_size, F = c.intermediate_size;
  const double Hq = c.q_dim(), Hkv = c.kv_dim();
  const double H = c.num_heads, dk = c.head_dim;
  // Score entries: per sequence and head, one per causal (query, key) pair.
  const double S = static_cast<double>(w.batch) * H *
                   static_cast<double>(causal_pairs(w.new_tokens, w.past_tokens));
  const double cached =
      static_cast<double>(w.batch * (w.past_tokens + w.new_tokens));  // keys per kv head
  const double score_bytes = w.fused_attention ? 0.0 : b * S;

  std::vector<OpCost> ops;
  // RMSNorm: x², running sum, x·rsqrt, ·gamma = 4 FLOPs per element; reads x and gamma.
  auto rmsnorm = [&](std::string name) {
    return OpCost{std::move(name), 4 * M * D, b * (M * D + D), b * M * D};
  };
  // Residual add: one FLOP per element, two inputs, one output.
  auto residual = [&](std::string name) {
    return OpCost{std::move(name), M * D, 2 * b * M * D, b * M * D};
  };

  ops.push_back(rmsnorm("attn_norm"));
  ops.push_back(linear("q_proj", M, D, Hq, b));
  ops.push_back(linear("k_proj", M, D, Hkv, b));
  ops.push_back(linear("v_proj", M, D, Hkv, b));
  // RoPE rotates each (x_i, x_{i+d/2}) pair: 4 multiplies + 2 adds = 3 FLOPs per element of q and
  // k.
  ops.push_back({"rope", 3 * M * (Hq + Hkv), b * M * (Hq + Hkv), b * M * (Hq + Hkv)});
  // QKᵀ: dk multiply-adds per score; reads the new queries and every cached key once per kv head.
  ops.push_back({"attention_scores", 2 * dk * S, b * (M * Hq + cached * Hkv), score_bytes});
  // Softmax: max, subtract, exp, sum, divide = 5 FLOPs per score.
  ops.push_back({"softmax", 5 * S, score_bytes, score_bytes});
  // P·V: dk multiply-adds per score; reads P and every cached value, writes one vector per head.
  ops.push_back({"attention_values", 2 * dk * S, score_bytes + b * cached * Hkv, b * M * Hq});
  ops.push_back(linear("o_proj", M, Hq, D, b));
  ops.push_back(residual("attn_residual"));
  ops.push_back(rmsnorm("mlp_norm"));
  ops.push_back(linear("gate_proj", M, D, F, b));
  ops.push_back(linear("up_proj", M, D, F, b));
  // SwiGLU: silu(g)·u = g / (1 + exp(-g)) · u: 5 FLOPs per element.
  ops.push_back({"swiglu", 5 * M * F, 2 * b * M * F, b * M * F});
  ops.push_back(linear("down_proj", M, F, D, b));
  ops.push_back(residual("mlp_residual"));
  return ops;
}

std::vector<OpCost> model_costs(const ModelConfig& c, const Workload& w) {
  const double b = static_cast<double>(bytes_per_element(w.dtype));
  const double M = static_cast<double>(w.batch * w.new_tokens);
  const double D = c.hidden_size, V = c.vocab_size;
  std::vector<OpCost> ops;
  ops.push_back({"embedding", 0.0, b * M * D, b * M * D});  // gather M rows of the table
  for (const auto& op : layer_costs(c, w)) {
    OpCost all = scaled(op, c.num_layers);
    all.name = "layers." + op.name;
    ops.push_back(all);
  }
  ops.push_back({"final_norm", 4 * M * D, b * (M * D + D), b * M * D});
  const double rows = w.all_logits ? M : static_cast<double>(w.batch);
  ops.push_back(linear("logits", rows, D, V, b));
  return ops;
}

double weight_bytes(const ModelConfig& c, DType dtype) {
  return static_cast<double>(c.parameter_count()) * static_cast<double>(bytes_per_element(dtype));
}

//! [kv_cache_bytes_per_token]
std::int64_t kv_cache_bytes_per_token(const ModelConfig& c, DType dtype) {
  // K and V, for every layer and every key/value head, head_dim numbers each.
  return 2LL * c.num_layers * c.num_kv_heads * c.head_dim *
         static_cast<std::int64_t>(bytes_per_element(dtype));
}
//! [kv_cache_bytes_per_token]

std::int64_t max_cached_tokens(const ModelConfig& c, DType dtype, double memory_bytes) {
  const double free_bytes = memory_bytes - weight_bytes(c, dtype);
  if (free_bytes <= 0) return 0;
  return static_cast<std::int64_t>(free_bytes /
                                   static_cast<double>(kv_cache_bytes_per_token(c, dtype)));
}

// --- Tensor parallelism (chapter 12) ------------------------------------------------------------

Interconnect interconnect_preset(std::string_view name) {
  // Latencies: NCCL's tuning table (src/graph/tuning.cc), ring algorithm, LL protocol (the one it
  // picks for the few-KB all-reduces of decode): 6.6 µs base, 0.6 µs per NVLink hop, 1.0 µs per
  // PCIe hop. They are NCCL's estimates, not measurements: chapter 12 measures the real figure.
  if (name == "nvlink4") return {"NVLink 4 (H100/H200 SXM)", 450e9, 6.6e-6, 0.6e-6};
  if (name == "pcie5") return {"PCIe 5 x16", 64e9, 6.6e-6, 1.0e-6};
  throw Error("unknown interconnect '" + std::string(name) + "' (allowed: nvlink4, pcie5)");
}

std::vector<std::string> interconnect_names() { return {"nvlink4", "pcie5"}; }

//! [ring_all_reduce]
double ring_all_reduce_seconds(double payload_bytes, int world_size, const Interconnect& link) {
  require(world_size >= 1, "ring_all_reduce_seconds: world_size must be at least 1");
  if (world_size == 1) return 0.0;  // nothing to add, nothing to send
  const double n = world_size;
  const double steps = 2.0 * (n - 1.0);  // N−1 reduce-scatter steps, N−1 all-gather steps
  const double sent_per_gpu = steps / n * payload_bytes;  // one 1/N chunk per step
  return link.base_latency + steps * link.step_latency + sent_per_gpu / link.bandwidth;
}
//! [ring_all_reduce]

//! [tensor_parallel_decode_cost]
TensorParallelStepCost tensor_parallel_decode_cost(const ModelConfig& c, int world_size,
                                                   std::int64_t context, DType weight_dtype,
                                                   DType activation_dtype, const Hardware& hw,
                                                   const Interconnect& link) {
  validate_tensor_parallel(c, world_size);
  require(context >= 0, "tensor_parallel_decode_cost: negative context");
  const TensorParallelShard s = tensor_parallel_shard(c, world_size, 0);  // all ranks are alike
  const double b = static_cast<double>(bytes_per_element(weight_dtype));
  const double D = c.hidden_size, V = c.vocab_size, L = c.num_layers;
  const double qd = s.q_dim(c.head_dim), kvd = s.kv_dim(c.head_dim), F = s.ffn;
  TensorParallelStepCost t;
  t.world_size = world_size;
  t.context = context;
  // Column-parallel q, k, v and gate, up; row-parallel o and down: each a 1/N slice.
  t.sharded_weight_bytes = L * ((qd + 2 * kvd) * D + D * qd + 3 * D * F) * b;
  // Two fp32 norm gains per layer, the final norm, one embedding row, the whole output projection.
  t.replicated_bytes = L * 2 * D * 4 + D * 4 + D * b + V * D * b;
  t.kv_bytes = L * 2.0 * static_cast<double>(context) * kvd * b;
  t.bytes_per_gpu = t.sharded_weight_bytes + t.replicated_bytes + t.kv_bytes;
  t.all_reduces = 2 * c.num_layers;
  t.all_reduce_payload = D * static_cast<double>(bytes_per_element(activation_dtype));
  t.all_reduce_bytes_per_gpu =
      t.all_reduces * 2.0 * (world_size - 1) / world_size * t.all_reduce_payload;
  t.memory_seconds = t.bytes_per_gpu / hw.bandwidth;
  t.all_reduce_seconds =
      t.all_reduces * ring_all_reduce_seconds(t.all_reduce_payload, world_size, link);
  t.step_seconds = t.memory_seconds + t.all_reduce_seconds;
  return t;
}
//! [tensor_parallel_decode_cost]

}  // namespace lab
