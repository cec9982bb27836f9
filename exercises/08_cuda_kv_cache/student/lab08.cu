// Lab 8, student version. Replace each TODO(student) with your code; run
//   ctest --test-dir build -L lab -R Lab08 --output-on-failure
// on a machine with a GPU until every test passes. exercises/08_cuda_kv_cache/README.md explains
// each step.
#include <cuda_bf16.h>

#include <cstdint>
#include <stdexcept>

#include "cuda/check.cuh"
#include "lab.hpp"

namespace lab08 {

// One warp per row: y[r] = Σ_c w[r, c] · x[c], w (rows, cols) bf16, x (cols), y (rows) fp32.
__global__ void gemv_warp_kernel(const __nv_bfloat16* w, const float* x, float* y, int rows,
                                 int cols) {
  // TODO(student): row r = this warp's index in the grid; leave when r >= rows (the whole warp
  // together). Lane l sums w[r, c] · x[c] for c = l, l + 32, ... in a float (__bfloat162float).
  // Add the 32 partial sums with __shfl_down_sync; lane 0 writes y[r].
  (void)w, (void)x, (void)y, (void)rows, (void)cols;
}

// Rows [*pos, *pos + n) of the caches get k_new and v_new (n, kv_dim), rounded to bf16.
__global__ void kv_append_kernel(const float* k_new, const float* v_new, __nv_bfloat16* k_cache,
                                 __nv_bfloat16* v_cache, int kv_dim, const int* pos) {
  // TODO(student): one thread per (token r, column c); read the position from *pos; convert with
  // __float2bfloat16.
  (void)k_new, (void)v_new, (void)k_cache, (void)v_cache, (void)kv_dim, (void)pos;
}

void gemv(const std::uint16_t* h_w, const float* h_x, float* h_y, int rows, int cols) {
  // TODO(student): validate sizes; device copies of w (as __nv_bfloat16), x and y; launch
  // gemv_warp_kernel with enough warps for every row; check the launch; copy y back.
  (void)h_w, (void)h_x, (void)h_y, (void)rows, (void)cols;
  throw std::logic_error("not implemented: lab08::gemv");
}

void kv_append(const float* h_k_new, const float* h_v_new, std::uint16_t* h_k_cache,
               std::uint16_t* h_v_cache, int n, int kv_dim, int pos, int capacity) {
  // TODO(student): validate (pos + n must fit the capacity); upload both caches, the new rows and
  // the position (one int in device memory); launch kv_append_kernel; download both caches.
  (void)h_k_new, (void)h_v_new, (void)h_k_cache, (void)h_v_cache, (void)n, (void)kv_dim, (void)pos,
      (void)capacity;
  throw std::logic_error("not implemented: lab08::kv_append");
}

}  // namespace lab08
