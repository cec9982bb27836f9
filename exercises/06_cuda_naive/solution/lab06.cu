// Lab 6, solution. The kernel is chapter 6's matmul_naive_kernel (cuda/matmul_naive.cu) without
// the accumulate option; the host function does what the chapter's DeviceBuffer and launcher do.
#include <cstddef>
#include <span>
#include <string>

#include "common/error.hpp"
#include "cuda/buffer.hpp"
#include "cuda/check.cuh"
#include "lab.hpp"

namespace lab06 {

// One thread per output y[i, o] = Σ_c x[i, c] · W[o, c]: x (M, K), w (N, K), y (M, N).
__global__ void matmul_kernel(const float* x, const float* w, float* y, int M, int K, int N) {
  const int o = blockIdx.x * blockDim.x + threadIdx.x;  // output feature: neighbouring threads
  const int i = blockIdx.y;                             // token: one grid row each
  if (o >= N || i >= M) return;                         // the last block along x overhangs N
  const float* xi = x + static_cast<long long>(i) * K;
  const float* wo = w + static_cast<long long>(o) * K;
  float acc = 0.0f;
  for (int c = 0; c < K; ++c) acc += xi[c] * wo[c];
  y[static_cast<long long>(i) * N + o] = acc;
}

void matmul(const float* h_x, const float* h_w, float* h_y, int M, int K, int N) {
  lab::require(M >= 0 && K >= 0 && N >= 0, "lab06::matmul: negative size M=" + std::to_string(M) +
                                               " K=" + std::to_string(K) +
                                               " N=" + std::to_string(N));
  lab::require(M <= 65535, "lab06::matmul: M=" + std::to_string(M) +
                               " rows exceed the grid's y dimension (65535)");
  if (M == 0 || N == 0) return;
  const auto m = static_cast<std::size_t>(M), k = static_cast<std::size_t>(K),
             n = static_cast<std::size_t>(N);
  // Device copies; DeviceBuffer frees them on every path, exceptions included.
  lab::cuda::DeviceBuffer<float> d_x(std::span<const float>(h_x, m * k));
  lab::cuda::DeviceBuffer<float> d_w(std::span<const float>(h_w, n * k));
  lab::cuda::DeviceBuffer<float> d_y(m * n);
  // 128 threads take 128 neighbouring outputs of one row; the grid's y dimension walks the rows.
  constexpr int kThreads = 128;
  const dim3 grid((N + kThreads - 1) / kThreads, M);
  matmul_kernel<<<grid, kThreads>>>(d_x.get(), d_w.get(), d_y.get(), M, K, N);
  LAB_CUDA_CHECK(cudaGetLastError());       // a bad launch configuration
  LAB_CUDA_CHECK(cudaDeviceSynchronize());  // a fault inside the kernel
  LAB_CUDA_CHECK(cudaMemcpy(h_y, d_y.get(), m * n * sizeof(float), cudaMemcpyDeviceToHost));
}

}  // namespace lab06
