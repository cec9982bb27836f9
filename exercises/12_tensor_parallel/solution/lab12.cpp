// Lab 12, solution.
#include <cmath>

#include "common/error.hpp"
#include "lab.hpp"

namespace lab12 {

lab::TensorParallelShard plan_shard(const lab::ModelConfig& c, int world_size, int rank) {
  lab::validate_tensor_parallel(c, world_size);
  lab::require(rank >= 0 && rank < world_size, "plan_shard: rank out of range");
  lab::TensorParallelShard s;
  s.rank = rank;
  s.world_size = world_size;
  s.q_heads = c.num_heads / world_size;  // column-parallel q: whole heads per rank
  s.first_q_head = rank * s.q_heads;
  if (c.num_kv_heads >= world_size) {  // whole KV heads per rank
    s.kv_heads = c.num_kv_heads / world_size;
    s.first_kv_head = rank * s.kv_heads;
  } else {  // fewer KV heads than ranks: the one its queries read, on N / Hkv ranks
    s.kv_heads = 1;
    s.first_kv_head = s.first_q_head / c.group_size();
    s.kv_replicated = true;
  }
  s.ffn = c.intermediate_size / world_size;  // column-parallel gate/up, row-parallel down
  s.first_ffn = rank * s.ffn;
  return s;
}

std::vector<double> mlp_partial(const lab::ModelWeights& w, int layer,
                                const lab::TensorParallelShard& s, std::span<const float> x) {
  const lab::ModelConfig& c = w.config;
  const auto D = static_cast<std::size_t>(c.hidden_size);
  const auto F = static_cast<std::size_t>(c.intermediate_size);
  lab::require(x.size() == D, "mlp_partial: x must hold hidden_size floats");
  const auto& gate = w.at(lab::layer_tensor_name(layer, "mlp.gate_proj.weight")).data;  // [F, D]
  const auto& up = w.at(lab::layer_tensor_name(layer, "mlp.up_proj.weight")).data;      // [F, D]
  const auto& down = w.at(lab::layer_tensor_name(layer, "mlp.down_proj.weight")).data;  // [D, F]
  std::vector<double> out(D, 0.0);
  for (int k = 0; k < s.ffn; ++k) {
    const auto f = static_cast<std::size_t>(s.first_ffn + k);
    double g = 0, u = 0;
    for (std::size_t i = 0; i < D; ++i) {
      g += static_cast<double>(gate[f * D + i]) * x[i];
      u += static_cast<double>(up[f * D + i]) * x[i];
    }
    const double a = g / (1 + std::exp(-g)) * u;                        // silu(g)·u
    for (std::size_t o = 0; o < D; ++o) out[o] += down[o * F + f] * a;  // column f of down
  }
  return out;
}

}  // namespace lab12
