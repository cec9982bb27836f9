// Lab 1, student version. Replace each TODO(student) with your code; run
//   ctest --test-dir build -L lab -R lab01
// until every test passes. The page exercises/01_arithmetic_intensity/README.md explains each step.
#include <stdexcept>

#include "lab.hpp"

namespace lab01 {

MatmulCost matmul_cost(std::int64_t B, std::int64_t D, std::int64_t F, int bytes_per_element) {
  // TODO(student): count the FLOPs of X(B×D) @ W(D×F) and the bytes of reading X and W and
  // writing Y once each; the intensity is their ratio.
  (void)B, (void)D, (void)F, (void)bytes_per_element;
  throw std::logic_error("not implemented: lab01::matmul_cost");
}

double critical_intensity(double peak_flops_per_second, double bandwidth_bytes_per_second) {
  // TODO(student): the intensity at which compute time equals memory time.
  (void)peak_flops_per_second, (void)bandwidth_bytes_per_second;
  throw std::logic_error("not implemented: lab01::critical_intensity");
}

std::int64_t smallest_compute_bound_batch(std::int64_t D, std::int64_t F, int bytes_per_element,
                                          double ridge) {
  // TODO(student): find the first B whose intensity reaches the ridge (or -1 if none ever does:
  // what is the limit of the intensity as B grows?).
  (void)D, (void)F, (void)bytes_per_element, (void)ridge;
  throw std::logic_error("not implemented: lab01::smallest_compute_bound_batch");
}

std::int64_t kv_cache_bytes(std::int64_t tokens, int layers, int kv_heads, int head_dim,
                            int bytes_per_element) {
  // TODO(student): every token stores one key and one value vector per layer and per KV head.
  (void)tokens, (void)layers, (void)kv_heads, (void)head_dim, (void)bytes_per_element;
  throw std::logic_error("not implemented: lab01::kv_cache_bytes");
}

}  // namespace lab01
