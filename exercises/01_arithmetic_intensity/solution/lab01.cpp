// Lab 1, solution.
#include "lab.hpp"

namespace lab01 {

MatmulCost matmul_cost(std::int64_t B, std::int64_t D, std::int64_t F, int bytes_per_element) {
  MatmulCost c;
  const double b = bytes_per_element;
  c.flops = 2.0 * static_cast<double>(B) * static_cast<double>(D) * static_cast<double>(F);
  c.bytes_transferred = b * static_cast<double>(B * D + D * F + B * F);
  c.intensity = c.flops / c.bytes_transferred;
  return c;
}

double critical_intensity(double peak_flops_per_second, double bandwidth_bytes_per_second) {
  return peak_flops_per_second / bandwidth_bytes_per_second;
}

std::int64_t smallest_compute_bound_batch(std::int64_t D, std::int64_t F, int bytes_per_element,
                                          double ridge) {
  // I(B) = 2BDF / (b(BD + DF + BF)) rises towards DF / (b(D + F)) as B grows.
  const double limit = static_cast<double>(D) * static_cast<double>(F) /
                       (static_cast<double>(bytes_per_element) * static_cast<double>(D + F));
  if (limit <= ridge) return -1;
  std::int64_t B = 1;
  while (matmul_cost(B, D, F, bytes_per_element).intensity < ridge) ++B;
  return B;
}

std::int64_t kv_cache_bytes(std::int64_t tokens, int layers, int kv_heads, int head_dim,
                            int bytes_per_element) {
  return tokens * 2 * layers * kv_heads * head_dim * bytes_per_element;
}

}  // namespace lab01
