// Softmax over rows: one block per row, three passes (max, sum of exponentials, normalise), each a
// block reduction. Subtracting the row maximum first keeps every exp() ≤ 1, so nothing overflows.
#include "cuda/check.cuh"
#include "cuda/kernels.hpp"
#include "cuda/reduce.cuh"

namespace lab::cuda {

//! [softmax]
__global__ void softmax_rows_kernel(float* s, int cols, bool causal, int causal_period) {
  __shared__ float scratch[32];
  float* row = s + static_cast<long long>(blockIdx.x) * cols;
  // Causal mask: query q sees keys 0..q; the masked entries are written as exact zeros.
  const int valid = causal ? static_cast<int>(blockIdx.x % causal_period) + 1 : cols;
  float row_max = -INFINITY;
  for (int j = threadIdx.x; j < valid; j += blockDim.x) row_max = fmaxf(row_max, row[j]);
  row_max = block_max(row_max, scratch);
  float sum = 0.0f;
  for (int j = threadIdx.x; j < valid; j += blockDim.x) sum += expf(row[j] - row_max);
  sum = block_sum(sum, scratch);
  const float inv_sum = 1.0f / sum;
  for (int j = threadIdx.x; j < cols; j += blockDim.x)
    row[j] = j < valid ? expf(row[j] - row_max) * inv_sum : 0.0f;
}
//! [softmax]

void softmax_rows(float* d_s, int rows, int cols, bool causal, int causal_period,
                  cudaStream_t stream) {
  if (rows == 0) return;
  softmax_rows_kernel<<<rows, 256, 0, stream>>>(d_s, cols, causal, causal ? causal_period : 1);
  LAB_CUDA_CHECK_LAUNCH();
}

}  // namespace lab::cuda
