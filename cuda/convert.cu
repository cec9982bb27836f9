// Conversions and device-side random fill. A 7B-parameter model in bf16 is 13.5 GB: drawing it on
// the host and copying it over would take minutes, so benchmarks draw random weights on the GPU.
#include <cstdint>

#include "cuda/check.cuh"
#include "cuda/kernels.hpp"
#include "cuda/reduce.cuh"

namespace lab::cuda {

__global__ void to_bf16_kernel(const float* in, bf16* out, long long count) {
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    out[i] = __float2bfloat16_rn(in[i]);
}

// SplitMix64 of (seed, index): every element is an independent function of its index, so any
// grid shape draws the same numbers.
__device__ inline std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

template <typename T>
__global__ void fill_random_kernel(T* out, long long count, std::uint64_t seed, float stddev,
                                   float mean) {
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const std::uint64_t bits =
        mix64(seed + 0x9E3779B97F4A7C15ULL * static_cast<std::uint64_t>(i + 1));
    // Sum of four 16-bit uniforms on [-0.5, 0.5): variance 4/12, so scale by √3 for unit variance.
    float sum = 0.0f;
    for (int k = 0; k < 4; ++k)
      sum += static_cast<float>((bits >> (16 * k)) & 0xFFFF) / 65536.0f - 0.5f;
    out[i] = from_float<T>(mean + stddev * 1.7320508f * sum);
  }
}

void to_bf16(const float* d_in, bf16* d_out, std::int64_t count, cudaStream_t stream) {
  if (count == 0) return;
  to_bf16_kernel<<<std::min(ceil_div(count, 256), 65535), 256, 0, stream>>>(d_in, d_out, count);
  LAB_CUDA_CHECK_LAUNCH();
}

template <typename T>
void fill_random(T* d_out, std::int64_t count, std::uint64_t seed, float stddev, float mean,
                 cudaStream_t stream) {
  if (count == 0) return;
  fill_random_kernel<T>
      <<<std::min(ceil_div(count, 256), 65535), 256, 0, stream>>>(d_out, count, seed, stddev, mean);
  LAB_CUDA_CHECK_LAUNCH();
}

template void fill_random<float>(float*, std::int64_t, std::uint64_t, float, float, cudaStream_t);
template void fill_random<bf16>(bf16*, std::int64_t, std::uint64_t, float, float, cudaStream_t);

}  // namespace lab::cuda
