// SwiGLU: silu(gate) ⊙ up, one thread per element. Element-wise, so bound by its 12 bytes per
// output; the fused gate_up layout (n, 2F) lets one GEMM/GEMV produce both inputs.
#include "cuda/check.cuh"
#include "cuda/kernels.hpp"
#include "cuda/reduce.cuh"

namespace lab::cuda {

//! [swiglu]
__global__ void swiglu_kernel(const float* gate, const float* up, float* out, int ffn,
                              int in_stride) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x, r = blockIdx.y;
  if (i >= ffn) return;
  const float g = gate[static_cast<long long>(r) * in_stride + i];
  const float u = up[static_cast<long long>(r) * in_stride + i];
  out[static_cast<long long>(r) * ffn + i] = g / (1.0f + expf(-g)) * u;  // silu(g) = g·σ(g)
}
//! [swiglu]

void swiglu(const float* d_gate, const float* d_up, float* d_out, int n, int ffn, int in_stride,
            cudaStream_t stream) {
  if (n == 0) return;
  swiglu_kernel<<<dim3(ceil_div(ffn, 256), n), 256, 0, stream>>>(d_gate, d_up, d_out, ffn,
                                                                 in_stride);
  LAB_CUDA_CHECK_LAUNCH();
}

}  // namespace lab::cuda
