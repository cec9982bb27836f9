// Embedding gather: one token id selects one row of the table. Pure data movement (D elements in,
// D out per token), so the only concern is that neighbouring threads touch neighbouring columns.
#include "cuda/check.cuh"
#include "cuda/kernels.hpp"
#include "cuda/reduce.cuh"

namespace lab::cuda {

//! [embedding_gather]
template <typename T>
__global__ void embedding_gather_kernel(const T* table, const int* tokens, float* x, int dim) {
  const int row = blockIdx.y;  // one token per grid row
  const int col = blockIdx.x * blockDim.x + threadIdx.x;
  if (col >= dim) return;
  const long long token = tokens[row];
  x[static_cast<long long>(row) * dim + col] = to_float(table[token * dim + col]);
}
//! [embedding_gather]

template <typename T>
void embedding_gather(const T* d_table, const int* d_tokens, float* d_x, int n, int dim,
                      cudaStream_t stream) {
  const dim3 grid(ceil_div(dim, 256), n);
  embedding_gather_kernel<<<grid, 256, 0, stream>>>(d_table, d_tokens, d_x, dim);
  LAB_CUDA_CHECK_LAUNCH();
}

template void embedding_gather<float>(const float*, const int*, float*, int, int, cudaStream_t);
template void embedding_gather<bf16>(const bf16*, const int*, float*, int, int, cudaStream_t);

}  // namespace lab::cuda
