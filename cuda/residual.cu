// Residual add x += y: the residual stream (残差) carries each block's input past it.
#include "cuda/check.cuh"
#include "cuda/kernels.hpp"
#include "cuda/reduce.cuh"

namespace lab::cuda {

//! [residual_add]
__global__ void residual_add_kernel(float* x, const float* y, long long count) {
  const long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count) x[i] += y[i];
}
//! [residual_add]

void residual_add(float* d_x, const float* d_y, std::int64_t count, cudaStream_t stream) {
  if (count == 0) return;
  residual_add_kernel<<<ceil_div(count, 256), 256, 0, stream>>>(d_x, d_y, count);
  LAB_CUDA_CHECK_LAUNCH();
}

}  // namespace lab::cuda
