// Naive matmul (chapter 6): one thread per output y[i, o] = Σ_c x[i, c] · W[o, c]. Threads of a
// warp take neighbouring outputs o, so each step of the loop reads 32 weights `in` floats apart
// (32 memory transactions where one would do) and every weight is re-read for each of the n rows
// from L2 instead of being reused from registers or shared memory. cuBLAS (chapter 7) fixes both.
#include "cuda/check.cuh"
#include "cuda/kernels.hpp"
#include "cuda/reduce.cuh"

namespace lab::cuda {

//! [matmul_naive]
__global__ void matmul_naive_kernel(const float* x, const float* w, float* y, int n, int in,
                                    int out, bool accumulate) {
  const int o = blockIdx.x * blockDim.x + threadIdx.x;  // output feature
  const int i = blockIdx.y;                             // token
  if (o >= out || i >= n) return;
  const float* xi = x + static_cast<long long>(i) * in;
  const float* wo = w + static_cast<long long>(o) * in;
  float acc = 0.0f;
  for (int c = 0; c < in; ++c) acc += xi[c] * wo[c];
  float* yi = y + static_cast<long long>(i) * out + o;
  *yi = accumulate ? *yi + acc : acc;
}
//! [matmul_naive]

void matmul_naive(const float* d_x, const float* d_w, float* d_y, int n, int in, int out,
                  bool accumulate, cudaStream_t stream) {
  if (n == 0 || out == 0) return;
  matmul_naive_kernel<<<dim3(ceil_div(out, 128), n), 128, 0, stream>>>(d_x, d_w, d_y, n, in, out,
                                                                       accumulate);
  LAB_CUDA_CHECK_LAUNCH();
}

}  // namespace lab::cuda
