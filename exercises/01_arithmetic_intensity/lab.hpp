#pragma once
/// \file
/// \brief Lab 1 interface (frozen): the cost of a matmul, the ridge point, the KV cache.

#include <cstdint>

/// Lab 1: arithmetic intensity.
namespace lab01 {

/// Cost of Y(B×F) = X(B×D) @ W(D×F) with every element stored in `bytes_per_element` bytes.
struct MatmulCost {
  double flops = 0;              ///< floating-point operations (a multiply-add counts 2)
  double bytes_transferred = 0;  ///< read X, read W, write Y, each exactly once
  double intensity = 0;          ///< flops / bytes_transferred
};

/// The seed's arithmetic_intensity(B, D, F, bytes_per_elem).
MatmulCost matmul_cost(std::int64_t B, std::int64_t D, std::int64_t F, int bytes_per_element);

/// The hardware's critical intensity (ridge point): peak FLOP/s over bandwidth in bytes/s.
double critical_intensity(double peak_flops_per_second, double bandwidth_bytes_per_second);

/// Smallest batch B for which matmul_cost(B, D, F, bytes).intensity >= ridge, or -1 if none.
std::int64_t smallest_compute_bound_batch(std::int64_t D, std::int64_t F, int bytes_per_element,
                                          double ridge);

/// Bytes of KV cache for `tokens` tokens: K and V, every layer, every key/value head.
std::int64_t kv_cache_bytes(std::int64_t tokens, int layers, int kv_heads, int head_dim,
                            int bytes_per_element);

}  // namespace lab01
