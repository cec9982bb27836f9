// Greedy sampling on the device: the decode loop never has to copy V logits to the host, and the
// chosen token stays on the GPU as the next step's input (so a CUDA graph can chain the steps).
#include "cuda/check.cuh"
#include "cuda/kernels.hpp"
#include "cuda/reduce.cuh"

namespace lab::cuda {

//! [argmax]
__global__ void argmax_kernel(const float* logits, int vocab, int* token, int* history, int* step) {
  __shared__ float best_value[1024];
  __shared__ int best_index[1024];
  float value = -INFINITY;
  int index = vocab;  // larger than any id: loses every tie
  for (int i = threadIdx.x; i < vocab; i += blockDim.x)
    if (logits[i] > value) value = logits[i], index = i;  // strided: first hit is the lowest id
  best_value[threadIdx.x] = value;
  best_index[threadIdx.x] = index;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) {
      const float v = best_value[threadIdx.x + half];
      const int k = best_index[threadIdx.x + half];
      if (v > best_value[threadIdx.x] ||
          (v == best_value[threadIdx.x] && k < best_index[threadIdx.x]))
        best_value[threadIdx.x] = v, best_index[threadIdx.x] = k;
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const int chosen = best_index[0] < vocab ? best_index[0] : 0;  // all NaN: token 0
    *token = chosen;
    if (history) history[(*step)++] = chosen;
  }
}
//! [argmax]

void argmax(const float* d_logits, int vocab, int* d_token, int* d_history, int* d_step,
            cudaStream_t stream) {
  argmax_kernel<<<1, 1024, 0, stream>>>(d_logits, vocab, d_token, d_history, d_step);
  LAB_CUDA_CHECK_LAUNCH();
}

}  // namespace lab::cuda
