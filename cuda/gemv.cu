// The decode GEMV family, y = W x: at batch 1 every weight is read once and used for one
// multiply-add, so the intensity is ~1 FLOP/byte in bf16 and the only figure of merit is the share
// of memory bandwidth reached (the memory wall, 内存墙). Each version fixes one thing.
#include <cstdint>

#include "cuda/check.cuh"
#include "cuda/kernels.hpp"
#include "cuda/reduce.cuh"

namespace lab::cuda {

const char* to_string(GemvVersion version) {
  switch (version) {
    case GemvVersion::V1Naive:
      return "v1_naive";
    case GemvVersion::V2Warp:
      return "v2_warp_per_row";
    case GemvVersion::V3Vector16:
      return "v3_vector16";
  }
  return "?";
}

//! [gemv_v1]
// v1: one thread per row. At each step the 32 threads of a warp read 32 different rows, `cols`
// elements apart: 32 separate memory transactions per warp-load, most of each 32-byte sector
// wasted.
template <typename T>
__global__ void gemv_v1_naive_kernel(const T* w, const float* x, float* y, int rows, int cols,
                                     bool accumulate) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  const T* wr = w + static_cast<long long>(r) * cols;
  float acc = 0.0f;
  for (int c = 0; c < cols; ++c) acc += to_float(wr[c]) * x[c];
  y[r] = accumulate ? y[r] + acc : acc;
}
//! [gemv_v1]

//! [gemv_v2]
// v2: one warp per row. Lane l reads elements l, l+32, ...: a warp-load touches one contiguous
// 128-byte (fp32) or 64-byte (bf16) span, so every byte fetched is used. A shuffle reduction sums
// the 32 partial dot products.
template <typename T>
__global__ void gemv_v2_warp_kernel(const T* w, const float* x, float* y, int rows, int cols,
                                    bool accumulate) {
  const int lane = threadIdx.x % 32;
  const int r = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  if (r >= rows) return;  // whole warps leave together, so the shuffles below stay full-warp
  const T* wr = w + static_cast<long long>(r) * cols;
  float acc = 0.0f;
  for (int c = lane; c < cols; c += 32) acc += to_float(wr[c]) * x[c];
  acc = warp_sum(acc);
  if (lane == 0) y[r] = accumulate ? y[r] + acc : acc;
}
//! [gemv_v2]

//! [gemv_v3]
// v3: each lane loads 16 bytes at a time (8 bf16 or 4 fp32: one LDG.128 instead of 4-8 narrow
// loads), issues kUnroll of them before using any (so several memory requests are in flight per
// lane, hiding HBM latency), and a block holds kRowsPerBlock warps = rows. Weights are read with a
// streaming hint (__ldcs: used once, don't keep in L1); x is small and re-read by every warp, so it
// goes through the read-only cache (__ldg).
constexpr int kRowsPerBlock = 8;
constexpr int kUnroll = 4;

template <typename T>
__device__ inline float dot16(uint4 packed, const float* x) {
  if constexpr (sizeof(T) == 2) {  // 8 bf16
    const __nv_bfloat162* pairs = reinterpret_cast<const __nv_bfloat162*>(&packed);
    const float4 x0 = __ldg(reinterpret_cast<const float4*>(x));
    const float4 x1 = __ldg(reinterpret_cast<const float4*>(x) + 1);
    const float2 w0 = __bfloat1622float2(pairs[0]), w1 = __bfloat1622float2(pairs[1]);
    const float2 w2 = __bfloat1622float2(pairs[2]), w3 = __bfloat1622float2(pairs[3]);
    return w0.x * x0.x + w0.y * x0.y + w1.x * x0.z + w1.y * x0.w + w2.x * x1.x + w2.y * x1.y +
           w3.x * x1.z + w3.y * x1.w;
  } else {  // 4 fp32
    const float4 w4 = *reinterpret_cast<const float4*>(&packed);
    const float4 x0 = __ldg(reinterpret_cast<const float4*>(x));
    return w4.x * x0.x + w4.y * x0.y + w4.z * x0.z + w4.w * x0.w;
  }
}

template <typename T>
__global__ void __launch_bounds__(kRowsPerBlock * 32)
    gemv_v3_vector16_kernel(const T* w, const float* x, float* y, int rows, int cols,
                            bool accumulate) {
  constexpr int kVec = 16 / sizeof(T);  // elements per 16-byte load
  const int lane = threadIdx.x % 32;
  const int r = blockIdx.x * kRowsPerBlock + threadIdx.x / 32;
  if (r >= rows) return;
  const uint4* wr = reinterpret_cast<const uint4*>(w + static_cast<long long>(r) * cols);
  const int vectors = cols / kVec;
  float acc = 0.0f;
  for (int base = lane; base < vectors; base += 32 * kUnroll) {
    uint4 packed[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {  // all loads first ...
      const int v = base + u * 32;
      packed[u] = v < vectors ? __ldcs(wr + v) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {  // ... then the arithmetic
      const int v = base + u * 32;
      if (v < vectors) acc += dot16<T>(packed[u], x + static_cast<long long>(v) * kVec);
    }
  }
  acc = warp_sum(acc);
  if (lane == 0) y[r] = accumulate ? y[r] + acc : acc;
}
//! [gemv_v3]

template <typename T>
void gemv(GemvVersion version, const T* d_w, const float* d_x, float* d_y, int rows, int cols,
          bool accumulate, cudaStream_t stream) {
  if (rows == 0) return;
  constexpr int kVec = 16 / sizeof(T);
  const bool aligned = reinterpret_cast<std::uintptr_t>(d_w) % 16 == 0 &&
                       reinterpret_cast<std::uintptr_t>(d_x) % 16 == 0 && cols % kVec == 0;
  if (version == GemvVersion::V3Vector16 && !aligned) version = GemvVersion::V2Warp;
  switch (version) {
    case GemvVersion::V1Naive:
      gemv_v1_naive_kernel<T>
          <<<ceil_div(rows, 128), 128, 0, stream>>>(d_w, d_x, d_y, rows, cols, accumulate);
      break;
    case GemvVersion::V2Warp:
      gemv_v2_warp_kernel<T>
          <<<ceil_div(rows, 8), 256, 0, stream>>>(d_w, d_x, d_y, rows, cols, accumulate);
      break;
    case GemvVersion::V3Vector16:
      gemv_v3_vector16_kernel<T><<<ceil_div(rows, kRowsPerBlock), kRowsPerBlock * 32, 0, stream>>>(
          d_w, d_x, d_y, rows, cols, accumulate);
      break;
  }
  LAB_CUDA_CHECK_LAUNCH();
}

template void gemv<float>(GemvVersion, const float*, const float*, float*, int, int, bool,
                          cudaStream_t);
template void gemv<bf16>(GemvVersion, const bf16*, const float*, float*, int, int, bool,
                         cudaStream_t);

}  // namespace lab::cuda
