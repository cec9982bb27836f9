// Lab 8, solution. The kernels are chapter 8's gemv_v2_warp_kernel (cuda/gemv.cu) for bf16 and
// kv_append_kernel (cuda/attention_cached.cu) for a bf16 cache, without the accumulate option.
#include <cuda_bf16.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "common/error.hpp"
#include "cuda/buffer.hpp"
#include "cuda/check.cuh"
#include "lab.hpp"

namespace lab08 {

namespace {

constexpr int kWarpsPerBlock = 8;

__device__ inline float warp_sum(float v) {
  // Tree reduction across the 32 lanes: after 5 steps lane 0 holds the total.
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xFFFFFFFFu, v, offset);
  return v;
}

void require_sizes(bool ok, const std::string& what) {
  lab::require(ok, "lab08::" + what);
}

}  // namespace

// One warp per row: y[r] = Σ_c w[r, c] · x[c], w (rows, cols) bf16, x (cols), y (rows) fp32.
__global__ void gemv_warp_kernel(const __nv_bfloat16* w, const float* x, float* y, int rows,
                                 int cols) {
  const int lane = threadIdx.x % 32;
  const int r = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  if (r >= rows) return;  // whole warps leave together, so the shuffles below stay full-warp
  const __nv_bfloat16* wr = w + static_cast<long long>(r) * cols;
  // A warp-load touches 32 neighbouring bf16 (64 contiguous bytes): every byte fetched is used.
  float acc = 0.0f;
  for (int c = lane; c < cols; c += 32) acc += __bfloat162float(wr[c]) * x[c];
  acc = warp_sum(acc);
  if (lane == 0) y[r] = acc;
}

// Rows [*pos, *pos + n) of the caches get k_new and v_new (n, kv_dim), rounded to bf16.
__global__ void kv_append_kernel(const float* k_new, const float* v_new, __nv_bfloat16* k_cache,
                                 __nv_bfloat16* v_cache, int kv_dim, const int* pos) {
  const int r = blockIdx.y;                             // new token
  const int c = blockIdx.x * blockDim.x + threadIdx.x;  // column of its key/value row
  if (c >= kv_dim) return;
  const long long src = static_cast<long long>(r) * kv_dim + c;
  const long long dst = static_cast<long long>(*pos + r) * kv_dim + c;
  k_cache[dst] = __float2bfloat16(k_new[src]);
  v_cache[dst] = __float2bfloat16(v_new[src]);
}

void gemv(const std::uint16_t* h_w, const float* h_x, float* h_y, int rows, int cols) {
  require_sizes(rows >= 0 && cols >= 0, "gemv: negative size rows=" + std::to_string(rows) +
                                            " cols=" + std::to_string(cols));
  if (rows == 0) return;
  const auto nr = static_cast<std::size_t>(rows), nc = static_cast<std::size_t>(cols);
  lab::cuda::DeviceBuffer<std::uint16_t> d_w(std::span<const std::uint16_t>(h_w, nr * nc));
  lab::cuda::DeviceBuffer<float> d_x(std::span<const float>(h_x, nc));
  lab::cuda::DeviceBuffer<float> d_y(nr);
  const int blocks = (rows + kWarpsPerBlock - 1) / kWarpsPerBlock;
  gemv_warp_kernel<<<blocks, kWarpsPerBlock * 32>>>(
      reinterpret_cast<const __nv_bfloat16*>(d_w.get()), d_x.get(), d_y.get(), rows, cols);
  LAB_CUDA_CHECK(cudaGetLastError());       // a bad launch configuration
  LAB_CUDA_CHECK(cudaDeviceSynchronize());  // a fault inside the kernel
  LAB_CUDA_CHECK(cudaMemcpy(h_y, d_y.get(), nr * sizeof(float), cudaMemcpyDeviceToHost));
}

void kv_append(const float* h_k_new, const float* h_v_new, std::uint16_t* h_k_cache,
               std::uint16_t* h_v_cache, int n, int kv_dim, int pos, int capacity) {
  require_sizes(n >= 0 && kv_dim >= 0 && pos >= 0 && capacity >= 0,
                "kv_append: negative size n=" + std::to_string(n) +
                    " kv_dim=" + std::to_string(kv_dim) + " pos=" + std::to_string(pos) +
                    " capacity=" + std::to_string(capacity));
  require_sizes(static_cast<long long>(pos) + n <= capacity,
                "kv_append: rows [" + std::to_string(pos) + ", " + std::to_string(pos + n) +
                    ") do not fit a cache of " + std::to_string(capacity) + " rows");
  require_sizes(n <= 65535, "kv_append: n=" + std::to_string(n) +
                                " tokens exceed the grid's y dimension (65535)");
  if (n == 0 || kv_dim == 0) return;
  const std::size_t cache = static_cast<std::size_t>(capacity) * static_cast<std::size_t>(kv_dim);
  const std::size_t fresh = static_cast<std::size_t>(n) * static_cast<std::size_t>(kv_dim);
  lab::cuda::DeviceBuffer<std::uint16_t> d_k(std::span<const std::uint16_t>(h_k_cache, cache));
  lab::cuda::DeviceBuffer<std::uint16_t> d_v(std::span<const std::uint16_t>(h_v_cache, cache));
  lab::cuda::DeviceBuffer<float> d_k_new(std::span<const float>(h_k_new, fresh));
  lab::cuda::DeviceBuffer<float> d_v_new(std::span<const float>(h_v_new, fresh));
  lab::cuda::DeviceBuffer<int> d_pos(std::span<const int>(&pos, 1));
  constexpr int kThreads = 256;
  const dim3 grid((kv_dim + kThreads - 1) / kThreads, n);
  kv_append_kernel<<<grid, kThreads>>>(
      d_k_new.get(), d_v_new.get(), reinterpret_cast<__nv_bfloat16*>(d_k.get()),
      reinterpret_cast<__nv_bfloat16*>(d_v.get()), kv_dim, d_pos.get());
  LAB_CUDA_CHECK(cudaGetLastError());
  LAB_CUDA_CHECK(cudaDeviceSynchronize());
  LAB_CUDA_CHECK(
      cudaMemcpy(h_k_cache, d_k.get(), cache * sizeof(std::uint16_t), cudaMemcpyDeviceToHost));
  LAB_CUDA_CHECK(
      cudaMemcpy(h_v_cache, d_v.get(), cache * sizeof(std::uint16_t), cudaMemcpyDeviceToHost));
}

}  // namespace lab08
