// RoPE: each thread rotates one (i, i + d/2) pair of one head of one token. The angle is computed
// in double, like the CPU reference: at position 8000 an fp32 product pos·inv_freq is already off
// by ~1e-3 rad, more than the fp32 tolerance of the whole forward.
#include "cuda/check.cuh"
#include "cuda/kernels.hpp"
#include "cuda/reduce.cuh"

namespace lab::cuda {

//! [rope]
__global__ void rope_kernel(float* x, int heads, int head_dim, const double* inv_freq,
                            int first_position, const int* pos_on_device) {
  const int half = head_dim / 2;
  const int row = blockIdx.y;
  const int pair = blockIdx.x * blockDim.x + threadIdx.x;  // (head, i) flattened
  if (pair >= heads * half) return;
  const int head = pair / half, i = pair % half;
  const int pos = first_position + (pos_on_device ? *pos_on_device : 0) + row;
  double s, c;
  sincos(static_cast<double>(pos) * inv_freq[i], &s, &c);
  float* base = x + static_cast<long long>(row) * heads * head_dim + head * head_dim;
  const float a = base[i], b = base[i + half];
  base[i] = a * static_cast<float>(c) - b * static_cast<float>(s);
  base[i + half] = b * static_cast<float>(c) + a * static_cast<float>(s);
}
//! [rope]

void apply_rope(float* d_x, int n, int heads, int head_dim, const double* d_inv_freq,
                int first_position, const int* d_pos, cudaStream_t stream) {
  if (n == 0) return;
  const dim3 grid(ceil_div(heads * (head_dim / 2), 128), n);
  rope_kernel<<<grid, 128, 0, stream>>>(d_x, heads, head_dim, d_inv_freq, first_position, d_pos);
  LAB_CUDA_CHECK_LAUNCH();
}

}  // namespace lab::cuda
