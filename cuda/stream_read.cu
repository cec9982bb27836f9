// The bandwidth yardstick: a kernel that only reads, 16 bytes per load, grid-stride, with the same
// access habits as gemv v3. Decode reads weights and writes almost nothing, so a read-only kernel,
// not a copy, is the fair ceiling for it.
#include "cuda/check.cuh"
#include "cuda/kernels.hpp"
#include "cuda/reduce.cuh"

namespace lab::cuda {

//! [stream_read]
__global__ void stream_read_kernel(const uint4* data, long long vectors, float* sink) {
  __shared__ float scratch[32];
  unsigned acc = 0;
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < vectors;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const uint4 v = __ldcs(data + i);
    acc ^= v.x ^ v.y ^ v.z ^ v.w;  // consume the data so the loads cannot be removed
  }
  const float total = block_sum(static_cast<float>(acc & 1u), scratch);
  if (threadIdx.x == 0) sink[blockIdx.x] = total;
}
//! [stream_read]

void stream_read(const void* d_data, std::int64_t bytes, float* d_sink, cudaStream_t stream) {
  int device = 0, sms = 0;
  LAB_CUDA_CHECK(cudaGetDevice(&device));
  LAB_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  // d_sink must hold 8 × SMs floats: 8 blocks of 256 threads fill an SM (2048 threads).
  stream_read_kernel<<<sms * 8, 256, 0, stream>>>(static_cast<const uint4*>(d_data), bytes / 16,
                                                  d_sink);
  LAB_CUDA_CHECK_LAUNCH();
}

}  // namespace lab::cuda
