#pragma once
/// \file
/// \brief Device helpers shared by the kernels: warp and block reductions, dtype conversion.

#include <cuda_bf16.h>

namespace lab::cuda {

/// Sum over the 32 lanes of a warp with register shuffles (no shared memory); every lane gets it.
__device__ inline float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}
__device__ inline float warp_max(float v) {
  for (int offset = 16; offset > 0; offset >>= 1)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

/// Sum over the block (blockDim.x a multiple of 32, ≤ 1024); every thread gets it. `scratch` holds
/// 32 floats of shared memory; the function ends with a barrier so scratch can be reused.
__device__ inline float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : 0.0f;
  v = warp_sum(v);
  __syncthreads();
  return v;
}
__device__ inline float block_max(float v, float* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = warp_max(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : -INFINITY;
  v = warp_max(v);
  __syncthreads();
  return v;
}

__device__ inline float to_float(float v) {
  return v;
}
__device__ inline float to_float(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
template <typename T>
__device__ inline T from_float(float v);
template <>
__device__ inline float from_float<float>(float v) {
  return v;
}
template <>
__device__ inline __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

/// 16 bytes of weights (8 bf16 or 4 fp32) as floats: the unit of every 16-byte-load kernel.
template <typename T>
__device__ inline void unpack16(uint4 packed, float (&out)[16 / sizeof(T)]) {
  if constexpr (sizeof(T) == 2) {
    const __nv_bfloat162* pairs = reinterpret_cast<const __nv_bfloat162*>(&packed);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 f = __bfloat1622float2(pairs[i]);
      out[2 * i] = f.x, out[2 * i + 1] = f.y;
    }
  } else {
    const float4 f = *reinterpret_cast<const float4*>(&packed);
    out[0] = f.x, out[1] = f.y, out[2] = f.z, out[3] = f.w;
  }
}

/// Σ_i w_i x_i over one 16-byte vector of weights and the matching floats of x (16-byte aligned,
/// plain loads: x in shared memory or in L1).
template <typename T>
__device__ inline float dot16_floats(uint4 packed, const float* x) {
  float w[16 / sizeof(T)];
  unpack16<T>(packed, w);
  float acc = 0.0f;
#pragma unroll
  for (int i = 0; i < static_cast<int>(16 / sizeof(T)); i += 4) {
    const float4 x4 = *reinterpret_cast<const float4*>(x + i);
    acc += w[i] * x4.x + w[i + 1] * x4.y + w[i + 2] * x4.z + w[i + 3] * x4.w;
  }
  return acc;
}

inline int ceil_div(long long a, long long b) {
  return static_cast<int>((a + b - 1) / b);
}

}  // namespace lab::cuda
