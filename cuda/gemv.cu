// The decode GEMV family, y = W x: at batch 1 every weight is read once and used for one
// multiply-add, so the intensity is ~1 FLOP/byte in bf16 and the only figure of merit is the share
// of memory bandwidth reached (the memory wall, 内存墙). Each version fixes one thing.
#include <cstdint>

#include <string>

#include "cuda/bulk_copy.cuh"
#include "cuda/check.cuh"
#include "cuda/kernels.hpp"
#include "cuda/launch.cuh"
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
    case GemvVersion::V4InFlight:
      return "v4_in_flight";
    case GemvVersion::V5Pdl:
      return "v5_pdl";
    case GemvVersion::V6Deep:
      return "v6_deep";
    case GemvVersion::V7Slab:
      return "v7_slab";
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

//! [gemv_v4]
// v4: more bytes in flight, and the first ones early. The 4096-row matrices (o, down) give v3 only
// ~31 warps per SM (512 blocks of 8 rows on 132 SMs): 31 warps x 32 lanes x 4 loads x 16 B = 63 KB
// in flight per SM, and Little's law (bytes in flight = bandwidth x latency) wants more under a
// loaded HBM: o reached 66%, down 76%, while gate_up (2.6 waves, twice the warps) reached 92%.
// v4 keeps kDeep = 8 loads in flight per lane (127 KB per SM), stages x once per block in shared
// memory (not once per warp through L1), and issues its first batch of weight loads before
// wait_for_previous_kernel(): under PDL (cuda/launch.cuh) the weights stream while the previous
// kernel drains. With `gain`, the block also folds RMSNorm in (gemv_rmsnorm, below).
// Measured (H100, PERF_NOTES.md): slower than v3 on every shape (o 57% of the read instead of 65%,
// qkv 77% instead of 85%). Staging x costs each block a trip to L2 and a barrier before its first
// multiply, and 56 registers a thread halve the resident warps (4 blocks per SM instead of 8), so
// the bytes in flight per SM did not grow after all. Its PDL prologue is worth keeping: v5.
constexpr int kWarpsPerBlock = 8;
constexpr int kDeep = 8;

// Loads batch `base` (lane-relative vector index) of U 16-byte vectors of each of R rows; a null
// row or a vector past the row's end loads zeros.
template <int R, int U>
__device__ inline void load_rows(const uint4* const (&rows)[R], int base, int vectors,
                                 uint4 (&w)[R][U]) {
#pragma unroll
  for (int u = 0; u < U; ++u) {
    const int v = base + u * 32;
#pragma unroll
    for (int r = 0; r < R; ++r)
      w[r][u] = rows[r] != nullptr && v < vectors ? __ldcs(rows[r] + v) : make_uint4(0, 0, 0, 0);
  }
}

// The warp's R dot products Σ_c W[row, c] xs[c], every lane gets them. `w` arrives holding the
// first batch (issued by the caller before it waited); each later batch is issued whole before any
// of it is used.
template <typename T, int R, int U>
__device__ inline void warp_dot_rows(const uint4* const (&rows)[R], const float* xs, int vectors,
                                     uint4 (&w)[R][U], float (&acc)[R]) {
  constexpr int kVec = 16 / sizeof(T);
  const int lane = threadIdx.x % 32;
  for (int base = lane; base < vectors; base += 32 * U) {
    if (base != lane) load_rows<R, U>(rows, base, vectors, w);
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int v = base + u * 32;
      if (v < vectors)
#pragma unroll
        for (int r = 0; r < R; ++r) acc[r] += dot16_floats<T>(w[r][u], xs + v * kVec);
    }
  }
#pragma unroll
  for (int r = 0; r < R; ++r) acc[r] = warp_sum(acc[r]);
}

// Copies x (cols floats, cols % 4 == 0) into shared memory, times `gain` when given (RMSNorm's
// gain folded into the GEMV's input), and returns Σ x² (for RMSNorm) to every thread. Ends with a
// barrier (block_sum's), so xs is complete on return.
__device__ inline float stage_x(const float* x, const float* gain, int cols, float* xs,
                                float* scratch) {
  float sum_sq = 0.0f;
  for (int i = threadIdx.x; i < cols / 4; i += blockDim.x) {
    float4 v = reinterpret_cast<const float4*>(x)[i];
    sum_sq += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
    if (gain != nullptr) {
      const float4 g = reinterpret_cast<const float4*>(gain)[i];
      v.x *= g.x, v.y *= g.y, v.z *= g.z, v.w *= g.w;
    }
    reinterpret_cast<float4*>(xs)[i] = v;
  }
  return block_sum(sum_sq, scratch);
}

template <typename T>
__device__ inline const uint4* row_vectors(const T* w, int row, int cols) {
  return reinterpret_cast<const uint4*>(w + static_cast<long long>(row) * cols);
}

template <typename T>
__global__ void __launch_bounds__(kWarpsPerBlock * 32, 4)
    gemv_v4_in_flight_kernel(const T* w, const float* x, const float* gain, float eps, float* y,
                             int rows, int cols, bool accumulate) {
  extern __shared__ float4 staged[];  // x (cols floats)
  __shared__ float scratch[32];
  allow_next_kernel();
  const int lane = threadIdx.x % 32, r = blockIdx.x * kWarpsPerBlock + threadIdx.x / 32;
  const int vectors = cols / (16 / static_cast<int>(sizeof(T)));
  const uint4* row[1] = {r < rows ? row_vectors(w, r, cols) : nullptr};
  uint4 wv[1][kDeep];
  load_rows<1, kDeep>(row, lane, vectors, wv);  // weights: independent of the previous kernel
  wait_for_previous_kernel();                   // x and y: written by earlier kernels
  float* xs = reinterpret_cast<float*>(staged);
  const float sum_sq = stage_x(x, gain, cols, xs, scratch);
  float acc[1] = {0.0f};
  warp_dot_rows<T, 1, kDeep>(row, xs, vectors, wv, acc);
  if (r < rows && lane == 0) {
    // RMSNorm folded: W (x ⊙ g / rms) = (W (x ⊙ g)) / rms, one scale per output.
    const float out = gain != nullptr ? acc[0] * rsqrtf(sum_sq / cols + eps) : acc[0];
    y[r] = accumulate ? y[r] + out : out;
  }
}
//! [gemv_v4]

//! [gemv_v5]
// v5: v3 with the PDL prologue. v3's loop unchanged (4 loads of 16 bytes in flight a lane, x
// through L1, 38 registers: 6 blocks of 8 warps an SM), but the first batch of weight loads is
// issued before wait_for_previous_kernel(): weights never depend on the previous kernel, so when
// the decode step launches it with PDL it streams while the previous kernel drains, and its own
// launch and ramp-up hide behind that kernel's tail. (Tried on the way and measured slower, see
// PERF_NOTES.md: two warps per row for the 4096-row matrices, and 8-deep loads with x staged in
// shared memory, v4: more bytes in flight on paper, fewer resident warps in practice.)
template <typename T, int kLoads>
__device__ __forceinline__ void gemv_rows_pdl(const T* w, const float* x, float* y, int rows,
                                              int cols, bool accumulate) {
  constexpr int kVec = 16 / sizeof(T);
  allow_next_kernel();
  const int lane = threadIdx.x % 32;
  const int r = blockIdx.x * kRowsPerBlock + threadIdx.x / 32;
  if (r >= rows) return;  // the block's other warps wait (the PDL contract holds per block)
  const uint4* wr = reinterpret_cast<const uint4*>(w + static_cast<long long>(r) * cols);
  const int vectors = cols / kVec;
  uint4 packed[kLoads];
#pragma unroll
  for (int u = 0; u < kLoads; ++u)  // the first batch, before the wait
    packed[u] = lane + u * 32 < vectors ? __ldcs(wr + lane + u * 32) : make_uint4(0, 0, 0, 0);
  wait_for_previous_kernel();  // x and y: written by earlier kernels
  float acc = 0.0f;
  for (int base = lane; base < vectors; base += 32 * kLoads) {
    if (base != lane)
#pragma unroll
      for (int u = 0; u < kLoads; ++u) {  // all loads first ...
        const int v = base + u * 32;
        packed[u] = v < vectors ? __ldcs(wr + v) : make_uint4(0, 0, 0, 0);
      }
#pragma unroll
    for (int u = 0; u < kLoads; ++u) {  // ... then the arithmetic
      const int v = base + u * 32;
      if (v < vectors) acc += dot16<T>(packed[u], x + static_cast<long long>(v) * kVec);
    }
  }
  acc = warp_sum(acc);
  if (lane == 0) y[r] = accumulate ? y[r] + acc : acc;
}

template <typename T>
__global__ void __launch_bounds__(kRowsPerBlock * 32)
    gemv_v5_pdl_kernel(const T* w, const float* x, float* y, int rows, int cols, bool accumulate) {
  gemv_rows_pdl<T, kUnroll>(w, x, y, rows, cols, accumulate);
}
//! [gemv_v5]

//! [gemv_v6]
// v6: v5 with 8 loads of 16 bytes in flight a lane instead of 4 (gemv_rows_pdl<T, 8>). For the
// 4096-row matrices (o, down) v5 runs 512 blocks of 8 warps, fewer than fit on 132 SMs, so its
// warps are limited by the bytes each has in flight, not by how many warps an SM holds: doubling
// the batch doubles the bytes in flight per SM (Little's law) at the price of registers the grid
// does not need. v4 tried the same depth but staged x in shared memory behind a barrier; v6 keeps
// v5's x through L1 and its PDL prologue (now 8 loads deep: an o row of 4096 bf16 is 16 vectors a
// lane, so half of it is in flight before the wait).
// Measured first without a register cap (H200, 8 launches back to back with PDL, PERF_NOTES.md):
// the opposite of the prediction on the matrices it was meant for, o 65% -> 55% and down 74% ->
// 65% of the read, while the tall ones gained 2 points. ptxas explains it: 69 registers a thread
// (v5: 44) leave room for 3 blocks of 256 threads an SM, 396 on 132 SMs, so the 512 blocks of o
// and down ran in two waves. __launch_bounds__(256, 4) asks for 4 blocks an SM: 62 registers, no
// spills, one wave. Measured again: still below v5 on every matrix (o 58.7% vs 65.6%, down 70.7%
// vs 74.0%). v5's 4 loads a lane already hold more bytes in flight than the memory needs (64 KB an
// SM against ~34 KB by Little's law); 8 only lengthen the prologue and the tail. The decode step
// keeps v5; v6 stays as the measured counter-example.
constexpr int kDeepLoads = 8;

template <typename T>
__global__ void __launch_bounds__(kRowsPerBlock * 32, 4)
    gemv_v6_deep_kernel(const T* w, const float* x, float* y, int rows, int cols, bool accumulate) {
  gemv_rows_pdl<T, kDeepLoads>(w, x, y, rows, cols, accumulate);
}
//! [gemv_v6]

//! [gemv_v7]
// v7: the block's whole slab of weights in flight before it waits. v3 to v6 keep each lane's
// loads in registers, so a warp has 4-8 loads of 16 bytes in flight and walks its row in several
// round trips; at a kernel's end the last warps finish those trips one after another while the
// rest of the memory system idles, and under PDL the next kernel's blocks can only issue their
// first batch (registers again) before they wait. Measured, that is ~5 us a kernel at every
// boundary, even back to back with PDL: the largest of the decode step's losses (PERF_NOTES.md).
// v7 gives each block a slab of consecutive rows (one contiguous stretch of W) and has one thread
// issue it whole to the bulk copy engine (cuda/bulk_copy.cuh) straight into shared memory,
// before wait_for_previous_kernel(): no register holds a byte in flight, so a block's entire
// share of the matrix streams while the previous kernel drains, and the slab lands at the rate
// of the memory, not of a warp's round trips.
// The multiply turns the loop around: thread t takes vectors t, t + 256, ... of every row of the
// slab, so it loads its slice of x once (into registers) and uses it for all the rows; a block
// reads x once, however many rows it holds (the slabs fill most of the SM's shared memory, and L1
// lives in the same 256 KB: x read once a row would miss). The row sums then meet across the
// warps in shared memory, in a fixed order: the same bits on every run.
// Measured (H200, PERF_NOTES.md; share of the read, 8 launches back to back with PDL, v5 -> v7):
// qkv 79.4 -> 77.4%, o 64.8 -> 60.0%, gate_up 87.7 -> 81.2%, down 74.2 -> 68.5%, lm_head 91.6 ->
// 82.2%; the decode step with v7 everywhere 4.75 ms against 4.01. Refuted, and the step profile
// says why: kernel by kernel without PDL, the slab versions of the fused qkv and gate_up take what
// the v4-based ones take, but in the graph v5's step gains 0.49 ms from PDL and v7's only 0.09 ms.
// PDL starts the next kernel's blocks only where an SM has registers and shared memory free, and a
// v7 block holds its 32 KB of shared memory until it exits: the deep prologue mostly never ran
// early. Alone, a block also loads, then multiplies, then reduces across warps (two barriers), a
// serial chain per 32 KB, where v5's 48 warps an SM each stream their own row with no barrier.
// Kept as the counter-example, with the bulk copy engine it teaches.
constexpr int kSlabThreads = 256;
constexpr int kSlabRows = 16;  // the most rows a slab holds (registers: one sum a row)

// A slab's target size. Measured with v7 (PERF_NOTES.md), decode step on Llama-2-7B: 32 KB
// 4.74 ms, 64 KB 4.79 ms, 128 KB 6.08 ms (one block an SM: nothing loads while it multiplies).
constexpr std::size_t kSlabBytes = 32 * 1024;

// Σ over one 16-byte vector of weights times 16 / sizeof(T) floats held in registers.
template <typename T>
__device__ inline float dot16_registers(uint4 packed, const float (&x)[16 / sizeof(T)]) {
  float w[16 / sizeof(T)];
  unpack16<T>(packed, w);
  float acc = 0.0f;
#pragma unroll
  for (int i = 0; i < static_cast<int>(16 / sizeof(T)); ++i) acc += w[i] * x[i];
  return acc;
}

// sums[r] = Σ_c slab[r, c] x'[c] for the slab's `rows` rows (≤ kSlabRows) of `vectors` 16-byte
// vectors, x' = x ⊙ gain when `gain` is given (RMSNorm's gain; then it also returns Σ x², for the
// norm's scale). x and gain are global, written by earlier kernels: call after the PDL wait. The
// slab is waited for (`bar`) only once the thread's first slice of x is on its way.
template <typename T>
__device__ float slab_row_dots(const uint4* slab, std::uint64_t* bar, int rows, int vectors,
                               const float* x, const float* gain, float* partial, float* sums) {
  constexpr int kVec = 16 / sizeof(T);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  float acc[kSlabRows] = {};
  float sum_sq = 0.0f;
  bool landed = false;
  for (int v = threadIdx.x; v < vectors; v += blockDim.x) {
    float xv[kVec];
#pragma unroll
    for (int i = 0; i < kVec; i += 4) {
      const float4 x4 =
          __ldg(reinterpret_cast<const float4*>(x + static_cast<long long>(v) * kVec + i));
      xv[i] = x4.x, xv[i + 1] = x4.y, xv[i + 2] = x4.z, xv[i + 3] = x4.w;
    }
    if (gain != nullptr) {
#pragma unroll
      for (int i = 0; i < kVec; i += 4) {
        const float4 g4 =
            __ldg(reinterpret_cast<const float4*>(gain + static_cast<long long>(v) * kVec + i));
        sum_sq +=
            xv[i] * xv[i] + xv[i + 1] * xv[i + 1] + xv[i + 2] * xv[i + 2] + xv[i + 3] * xv[i + 3];
        xv[i] *= g4.x, xv[i + 1] *= g4.y, xv[i + 2] *= g4.z, xv[i + 3] *= g4.w;
      }
    }
    if (!landed) bulk_wait(bar, 0), landed = true;
#pragma unroll
    for (int r = 0; r < kSlabRows; ++r)
      if (r < rows) acc[r] += dot16_registers<T>(slab[static_cast<long long>(r) * vectors + v], xv);
  }
  // partial: [warps][kSlabRows] row sums, then [warps] sums of x².
#pragma unroll
  for (int r = 0; r < kSlabRows; ++r) {
    if (r >= rows) break;
    const float s = warp_sum(acc[r]);
    if (lane == 0) partial[warp * kSlabRows + r] = s;
  }
  sum_sq = warp_sum(sum_sq);
  if (lane == 0) partial[warps * kSlabRows + warp] = sum_sq;
  __syncthreads();
  if (static_cast<int>(threadIdx.x) < rows) {
    float sum = 0.0f;  // the warps in order: the same sum on every run
    for (int w = 0; w < warps; ++w) sum += partial[w * kSlabRows + threadIdx.x];
    sums[threadIdx.x] = sum;
  }
  float total_sq = 0.0f;
  for (int w = 0; w < warps; ++w) total_sq += partial[warps * kSlabRows + w];
  __syncthreads();
  return total_sq;
}

// Thread 0 starts the copies of up to two stretches of rows (`n` rows from row a, then `n` from
// row b when b >= 0) into the slab, counted on `bar`; every thread returns once the barrier is
// initialised. The weights never depend on an earlier kernel: call before the PDL wait.
template <typename T>
__device__ void start_slab(const T* w, int cols, int a, int b, int n, uint4* slab,
                           std::uint64_t* bar) {
  if (threadIdx.x == 0) {
    const std::uint32_t stretch = static_cast<std::uint32_t>(n) * cols * sizeof(T);
    bulk_barrier_init(bar);
    bulk_expect_bytes(bar, b >= 0 ? 2 * stretch : stretch);
    bulk_copy(slab, w + static_cast<long long>(a) * cols, stretch, bar);
    if (b >= 0) bulk_copy(slab + stretch / 16, w + static_cast<long long>(b) * cols, stretch, bar);
  }
  __syncthreads();
}

// The shared memory every slab kernel declares next to its dynamic slab.
struct SlabShared {
  std::uint64_t bar;
  float partial[(kSlabRows + 1) * kSlabThreads / 32];
  float sums[kSlabRows];
};

template <typename T>
__global__ void __launch_bounds__(kSlabThreads)
    gemv_v7_slab_kernel(const T* w, const float* x, float* y, int rows, int cols, int slab_rows,
                        bool accumulate) {
  extern __shared__ uint4 slab[];
  __shared__ SlabShared sh;
  allow_next_kernel();
  const int r0 = blockIdx.x * slab_rows, n = min(slab_rows, rows - r0);
  start_slab(w, cols, r0, -1, n, slab, &sh.bar);
  wait_for_previous_kernel();  // x and y: written by earlier kernels
  slab_row_dots<T>(slab, &sh.bar, n, cols / (16 / static_cast<int>(sizeof(T))), x, nullptr,
                   sh.partial, sh.sums);
  if (static_cast<int>(threadIdx.x) < n) {
    const int r = r0 + threadIdx.x;
    y[r] = accumulate ? y[r] + sh.sums[threadIdx.x] : sh.sums[threadIdx.x];
  }
}
//! [gemv_v7]

//! [gemv_fused]
// The decode step's other GEMVs carry their neighbours, on v4's block structure: x staged once
// per block in shared memory, where RMSNorm folds in for free: the block multiplies x by the gain
// as it stages it, sums x² on the way (block_sum), and each output is scaled by 1/rms at the end,
// W (x ⊙ g / rms) = (W (x ⊙ g)) / rms. Each warp computes the two rows its epilogue needs
// together (4 loads each in flight, 8 a lane), so nothing between one GEMV and the next touches
// main memory:
// - qkv: rows (i, i + d/2) of one head, the two halves RoPE rotates together; then the rotation,
//   and k and v written straight into the KV cache at row *pos (bf16 there). Four kernels fewer
//   (norm, two RoPE, append).
// - gate_up: rows (i, F + i), gate and up of one unit; then silu(g)·u. Two kernels fewer (norm,
//   SwiGLU). Folding SwiGLU into the down GEMV's x load instead would evaluate silu once per
//   weight, 4096 × 11008 exponentials a layer instead of 11008.
// - lm_head (gemv_rmsnorm): one row a warp, v4's kernel with the gain. The final norm folded.
// (Measured: a warp-local variant, x and gain read through L1 and Σx² summed by each warp, was
// 5-7% slower on qkv and gate_up; PERF_NOTES.md.)
// The qkv epilogue for pair p = rows (r0, r1) of the stacked [q | k | v] weight, a and b their
// normalised dot products: q and k rotated (RoPE at position *pos) and q written fp32, k and v
// converted to T into the caches' row *pos.
template <typename T>
__device__ inline void store_qkv_pair(float a, float b, int p, int r0, int r1, float* q, T* k_cache,
                                      T* v_cache, int heads, int kv_heads, int head_dim,
                                      const double* inv_freq, const int* pos) {
  const int half = head_dim / 2, q_dim = heads * head_dim, kv_dim = kv_heads * head_dim;
  const long long t = *pos;  // this token's position = its cache row
  if (p < (heads + kv_heads) * half) {
    double s, c;  // the angle in double, as rope_kernel computes it
    sincos(static_cast<double>(t) * inv_freq[p % half], &s, &c);
    const float ra = a * static_cast<float>(c) - b * static_cast<float>(s);
    const float rb = b * static_cast<float>(c) + a * static_cast<float>(s);
    if (r0 < q_dim) {
      q[r0] = ra, q[r1] = rb;
    } else {
      T* k_row = k_cache + t * kv_dim - q_dim;  // indexed by the stacked row
      k_row[r0] = from_float<T>(ra), k_row[r1] = from_float<T>(rb);
    }
  } else {
    T* v_row = v_cache + t * kv_dim - q_dim - kv_dim;
    v_row[r0] = from_float<T>(a), v_row[r1] = from_float<T>(b);
  }
}

template <typename T>
__global__ void __launch_bounds__(kWarpsPerBlock * 32, 4)
    gemv_rmsnorm_qkv_rope_kernel(const T* w, const float* x, const float* gain, float eps, float* q,
                                 T* k_cache, T* v_cache, int heads, int kv_heads, int head_dim,
                                 int cols, const double* inv_freq, const int* pos) {
  extern __shared__ float4 staged[];
  __shared__ float scratch[32];
  allow_next_kernel();
  const int half = head_dim / 2, q_dim = heads * head_dim, kv_dim = kv_heads * head_dim;
  const int rope_pairs = (heads + kv_heads) * half, pairs = rope_pairs + kv_dim / 2;
  const int lane = threadIdx.x % 32, p = blockIdx.x * kWarpsPerBlock + threadIdx.x / 32;
  int r0 = -1, r1 = -1;  // rows of the stacked [q | k | v] weight
  if (p < rope_pairs) {  // q and k heads: the pair RoPE rotates
    r0 = (p / half) * head_dim + p % half, r1 = r0 + half;
  } else if (p < pairs) {  // v: any two rows
    r0 = q_dim + kv_dim + 2 * (p - rope_pairs), r1 = r0 + 1;
  }
  const int vectors = cols / (16 / static_cast<int>(sizeof(T)));
  const uint4* rows[2] = {r0 >= 0 ? row_vectors(w, r0, cols) : nullptr,
                          r1 >= 0 ? row_vectors(w, r1, cols) : nullptr};
  uint4 wv[2][kDeep / 2];
  load_rows<2, kDeep / 2>(rows, lane, vectors, wv);
  wait_for_previous_kernel();
  float* xs = reinterpret_cast<float*>(staged);
  const float sum_sq = stage_x(x, gain, cols, xs, scratch);
  float acc[2] = {0.0f, 0.0f};
  warp_dot_rows<T, 2, kDeep / 2>(rows, xs, vectors, wv, acc);
  if (p >= pairs || lane != 0) return;
  const float inv_rms = rsqrtf(sum_sq / cols + eps);
  store_qkv_pair(acc[0] * inv_rms, acc[1] * inv_rms, p, r0, r1, q, k_cache, v_cache, heads,
                 kv_heads, head_dim, inv_freq, pos);
}

template <typename T>
__global__ void __launch_bounds__(kWarpsPerBlock * 32, 4)
    gemv_rmsnorm_swiglu_kernel(const T* w, const float* x, const float* gain, float eps, float* act,
                               int ffn, int cols) {
  extern __shared__ float4 staged[];
  __shared__ float scratch[32];
  allow_next_kernel();
  const int lane = threadIdx.x % 32, i = blockIdx.x * kWarpsPerBlock + threadIdx.x / 32;
  const int vectors = cols / (16 / static_cast<int>(sizeof(T)));
  const uint4* rows[2] = {i < ffn ? row_vectors(w, i, cols) : nullptr,         // gate row i
                          i < ffn ? row_vectors(w, ffn + i, cols) : nullptr};  // up row i
  uint4 wv[2][kDeep / 2];
  load_rows<2, kDeep / 2>(rows, lane, vectors, wv);
  wait_for_previous_kernel();
  float* xs = reinterpret_cast<float*>(staged);
  const float sum_sq = stage_x(x, gain, cols, xs, scratch);
  float acc[2] = {0.0f, 0.0f};
  warp_dot_rows<T, 2, kDeep / 2>(rows, xs, vectors, wv, acc);
  if (i >= ffn || lane != 0) return;
  const float inv_rms = rsqrtf(sum_sq / cols + eps);
  const float g = acc[0] * inv_rms, u = acc[1] * inv_rms;
  act[i] = g / (1.0f + expf(-g)) * u;  // silu(g)·u, as swiglu_kernel
}
//! [gemv_fused]

//! [gemv_slab_fused]
// The same three fused GEMVs on v7's slabs. The block's rows (both halves of its pairs: RoPE's
// (i, i + d/2), or gate and up) are two stretches of W, each a bulk copy issued before the PDL
// wait; each thread multiplies its slice of x by the gain as it loads it and sums x² on the way
// (RMSNorm's scale, applied to the sums at the end). A block holds `slab_pairs` pairs; for qkv it
// divides d/2, so a block's pairs lie in one head (or all in v).
// The fused slab kernels' middle, after their copies have started: the PDL wait, the slab's row
// sums with x ⊙ gain into sh.sums, and RMSNorm's 1 / rms.
template <typename T>
__device__ float slab_norm_dots(const uint4* slab, SlabShared& sh, int rows, int cols,
                                const float* x, const float* gain, float eps) {
  wait_for_previous_kernel();  // x: written by earlier kernels
  const float sum_sq = slab_row_dots<T>(
      slab, &sh.bar, rows, cols / (16 / static_cast<int>(sizeof(T))), x, gain, sh.partial, sh.sums);
  return rsqrtf(sum_sq / cols + eps);
}

template <typename T>
__global__ void __launch_bounds__(kSlabThreads)
    gemv_slab_rmsnorm_qkv_rope_kernel(const T* w, const float* x, const float* gain, float eps,
                                      float* q, T* k_cache, T* v_cache, int heads, int kv_heads,
                                      int head_dim, int cols, const double* inv_freq,
                                      const int* pos, int slab_pairs) {
  extern __shared__ uint4 slab[];
  __shared__ SlabShared sh;
  allow_next_kernel();
  const int half = head_dim / 2, kv_dim = kv_heads * head_dim, n = slab_pairs;
  const int rope_pairs = (heads + kv_heads) * half, p0 = blockIdx.x * n;
  const bool rope = p0 < rope_pairs;
  // rope: pair p0 + k is rows (a + k, a + half + k); v: rows (a + 2k, a + 2k + 1), 2n in a row.
  const int a =
      rope ? (p0 / half) * head_dim + p0 % half : heads * head_dim + kv_dim + 2 * (p0 - rope_pairs);
  start_slab(w, cols, a, rope ? a + half : -1, rope ? n : 2 * n, slab, &sh.bar);
  const float inv_rms = slab_norm_dots<T>(slab, sh, 2 * n, cols, x, gain, eps);
  const int k = threadIdx.x;
  if (k >= n) return;
  const int s0 = rope ? k : 2 * k, s1 = rope ? n + k : 2 * k + 1;  // the pair's slab rows
  const int r0 = a + s0, r1 = rope ? a + half + k : a + s1;
  store_qkv_pair(sh.sums[s0] * inv_rms, sh.sums[s1] * inv_rms, p0 + k, r0, r1, q, k_cache, v_cache,
                 heads, kv_heads, head_dim, inv_freq, pos);
}

template <typename T>
__global__ void __launch_bounds__(kSlabThreads)
    gemv_slab_rmsnorm_swiglu_kernel(const T* w, const float* x, const float* gain, float eps,
                                    float* act, int ffn, int cols, int slab_pairs) {
  extern __shared__ uint4 slab[];
  __shared__ SlabShared sh;
  allow_next_kernel();
  const int i0 = blockIdx.x * slab_pairs, n = min(slab_pairs, ffn - i0);
  start_slab(w, cols, i0, ffn + i0, n, slab, &sh.bar);  // gate rows, then up rows
  const float inv_rms = slab_norm_dots<T>(slab, sh, 2 * n, cols, x, gain, eps);
  const int k = threadIdx.x;
  if (k >= n) return;
  const float g = sh.sums[k] * inv_rms, u = sh.sums[n + k] * inv_rms;
  act[i0 + k] = g / (1.0f + expf(-g)) * u;  // silu(g)·u, as swiglu_kernel
}

template <typename T>
__global__ void __launch_bounds__(kSlabThreads)
    gemv_slab_rmsnorm_kernel(const T* w, const float* x, const float* gain, float eps, float* y,
                             int rows, int cols, int slab_rows) {
  extern __shared__ uint4 slab[];
  __shared__ SlabShared sh;
  allow_next_kernel();
  const int r0 = blockIdx.x * slab_rows, n = min(slab_rows, rows - r0);
  start_slab(w, cols, r0, -1, n, slab, &sh.bar);
  const float inv_rms = slab_norm_dots<T>(slab, sh, n, cols, x, gain, eps);
  if (static_cast<int>(threadIdx.x) < n) y[r0 + threadIdx.x] = sh.sums[threadIdx.x] * inv_rms;
}
//! [gemv_slab_fused]

namespace {

// The v4 family's preconditions: whole 16-byte vectors in every row, 16-byte aligned rows and x.
template <typename T>
bool vector16_ok(const T* d_w, const float* d_x, int cols) {
  constexpr int kVec = 16 / sizeof(T);
  return reinterpret_cast<std::uintptr_t>(d_w) % 16 == 0 &&
         reinterpret_cast<std::uintptr_t>(d_x) % 16 == 0 && cols % kVec == 0;
}

// `bytes` of dynamic shared memory for `kernel`; beyond what the call site has opted in to so far
// (`opted_in`; 48 KB without asking) it asks for more (227 KB on Hopper).
template <typename Kernel>
std::size_t opt_in_shared(Kernel kernel, std::size_t bytes, std::size_t& opted_in) {
  if (bytes > opted_in) {
    LAB_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(bytes)));
    opted_in = bytes;
  }
  return bytes;
}

// Dynamic shared memory for x (cols floats).
template <typename Kernel>
std::size_t staged_bytes(Kernel kernel, int cols, std::size_t& opted_in) {
  return opt_in_shared(kernel, sizeof(float) * static_cast<std::size_t>(cols), opted_in);
}

int multiprocessors() {
  static const int count = [] {
    int device = 0, sms = 0;
    LAB_CUDA_CHECK(cudaGetDevice(&device));
    LAB_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    return sms;
  }();
  return count;
}

// Units (rows, or pairs of rows) a v7 slab holds: the largest power of two whose rows fit in the
// slab's target size and in kSlabRows, that still leaves every SM at least two blocks (small
// matrices: more, smaller slabs beat fewer, larger ones) and, when `divides` > 0, divides it.
int slab_units(std::size_t row_bytes, int rows_per_unit, long long units, int divides) {
  int n = 1;
  while (2 * n * rows_per_unit <= kSlabRows && 2 * n * rows_per_unit * row_bytes <= kSlabBytes &&
         2LL * n * 2 * multiprocessors() <= units && (divides == 0 || divides % (2 * n) == 0))
    n *= 2;
  return n;
}

// v7's dynamic shared memory, the slab. Always opts in: the default limit (48 KB) counts the
// static part (barrier, partial sums) too, so a 48 KB slab would not fit under it. Returns 0 when
// the slab does not fit in one block's shared memory (the caller falls back).
template <typename Kernel>
std::size_t slab_smem(Kernel kernel, std::size_t bytes, std::size_t& opted_in) {
  constexpr std::size_t kMaxDynamic = 200 * 1024;  // under Hopper's 227 KB, with the static part
  return bytes > kMaxDynamic ? 0 : opt_in_shared(kernel, bytes, opted_in);
}

}  // namespace

template <typename T>
bool decode_gemv_fusable(const T* d_w, const float* d_x, int cols) {
  return vector16_ok(d_w, d_x, cols);
}

template <typename T>
void gemv_rmsnorm(const T* d_w, const float* d_x, const float* d_gain, float eps, float* d_y,
                  int rows, int cols, cudaStream_t stream, bool pdl, GemvVersion family) {
  require(vector16_ok(d_w, d_x, cols) && reinterpret_cast<std::uintptr_t>(d_gain) % 16 == 0,
          "gemv_rmsnorm: needs cols % " + std::to_string(16 / sizeof(T)) +
              " == 0 and 16-byte aligned rows (check decode_gemv_fusable)");
  if (rows == 0) return;
  if (family == GemvVersion::V7Slab) {
    const std::size_t row_bytes = sizeof(T) * static_cast<std::size_t>(cols);
    const int n = slab_units(row_bytes, 1, rows, 0);
    static std::size_t slab_opted_in = 0;
    const std::size_t shared = slab_smem(gemv_slab_rmsnorm_kernel<T>, n * row_bytes, slab_opted_in);
    if (shared > 0)
      return launch_kernel(gemv_slab_rmsnorm_kernel<T>, ceil_div(rows, n), kSlabThreads, shared,
                           stream, pdl, d_w, d_x, d_gain, eps, d_y, rows, cols, n);
  }
  static std::size_t opted_in = 48 * 1024;
  const std::size_t shared = staged_bytes(gemv_v4_in_flight_kernel<T>, cols, opted_in);
  launch_kernel(gemv_v4_in_flight_kernel<T>, ceil_div(rows, kWarpsPerBlock), kWarpsPerBlock * 32,
                shared, stream, pdl, d_w, d_x, d_gain, eps, d_y, rows, cols, false);
}

template <typename T>
void gemv_rmsnorm_qkv_rope(const T* d_w_qkv, const float* d_x, const float* d_gain, float eps,
                           float* d_q, T* d_k_cache, T* d_v_cache, int heads, int kv_heads,
                           int head_dim, int cols, const double* d_inv_freq, const int* d_pos,
                           cudaStream_t stream, bool pdl, GemvVersion family) {
  require(vector16_ok(d_w_qkv, d_x, cols) && reinterpret_cast<std::uintptr_t>(d_gain) % 16 == 0,
          "gemv_rmsnorm_qkv_rope: needs cols % " + std::to_string(16 / sizeof(T)) +
              " == 0 and 16-byte aligned rows (check decode_gemv_fusable)");
  require(head_dim % 2 == 0, "gemv_rmsnorm_qkv_rope: head_dim must be even");
  const int pairs = (heads + kv_heads) * (head_dim / 2) + kv_heads * head_dim / 2;
  if (family == GemvVersion::V7Slab) {
    const std::size_t row_bytes = sizeof(T) * static_cast<std::size_t>(cols);
    const int n = slab_units(row_bytes, 2, pairs, head_dim / 2);
    static std::size_t slab_opted_in = 0;
    const std::size_t shared =
        slab_smem(gemv_slab_rmsnorm_qkv_rope_kernel<T>, 2 * n * row_bytes, slab_opted_in);
    if (shared > 0)
      return launch_kernel(gemv_slab_rmsnorm_qkv_rope_kernel<T>, pairs / n, kSlabThreads, shared,
                           stream, pdl, d_w_qkv, d_x, d_gain, eps, d_q, d_k_cache, d_v_cache, heads,
                           kv_heads, head_dim, cols, d_inv_freq, d_pos, n);
  }
  static std::size_t opted_in = 48 * 1024;
  const std::size_t shared = staged_bytes(gemv_rmsnorm_qkv_rope_kernel<T>, cols, opted_in);
  launch_kernel(gemv_rmsnorm_qkv_rope_kernel<T>, ceil_div(pairs, kWarpsPerBlock),
                kWarpsPerBlock * 32, shared, stream, pdl, d_w_qkv, d_x, d_gain, eps, d_q, d_k_cache,
                d_v_cache, heads, kv_heads, head_dim, cols, d_inv_freq, d_pos);
}

template <typename T>
void gemv_rmsnorm_swiglu(const T* d_w_gate_up, const float* d_x, const float* d_gain, float eps,
                         float* d_act, int ffn, int cols, cudaStream_t stream, bool pdl,
                         GemvVersion family) {
  require(vector16_ok(d_w_gate_up, d_x, cols) && reinterpret_cast<std::uintptr_t>(d_gain) % 16 == 0,
          "gemv_rmsnorm_swiglu: needs cols % " + std::to_string(16 / sizeof(T)) +
              " == 0 and 16-byte aligned rows (check decode_gemv_fusable)");
  if (ffn == 0) return;
  if (family == GemvVersion::V7Slab) {
    const std::size_t row_bytes = sizeof(T) * static_cast<std::size_t>(cols);
    const int n = slab_units(row_bytes, 2, ffn, 0);
    static std::size_t slab_opted_in = 0;
    const std::size_t shared =
        slab_smem(gemv_slab_rmsnorm_swiglu_kernel<T>, 2 * n * row_bytes, slab_opted_in);
    if (shared > 0)
      return launch_kernel(gemv_slab_rmsnorm_swiglu_kernel<T>, ceil_div(ffn, n), kSlabThreads,
                           shared, stream, pdl, d_w_gate_up, d_x, d_gain, eps, d_act, ffn, cols, n);
  }
  static std::size_t opted_in = 48 * 1024;
  const std::size_t shared = staged_bytes(gemv_rmsnorm_swiglu_kernel<T>, cols, opted_in);
  launch_kernel(gemv_rmsnorm_swiglu_kernel<T>, ceil_div(ffn, kWarpsPerBlock), kWarpsPerBlock * 32,
                shared, stream, pdl, d_w_gate_up, d_x, d_gain, eps, d_act, ffn, cols);
}

template <typename T>
void gemv(GemvVersion version, const T* d_w, const float* d_x, float* d_y, int rows, int cols,
          bool accumulate, cudaStream_t stream, bool pdl) {
  if (rows == 0) return;
  const bool aligned = vector16_ok(d_w, d_x, cols);
  if (version >= GemvVersion::V3Vector16 && !aligned) version = GemvVersion::V2Warp;
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
    case GemvVersion::V4InFlight: {
      static std::size_t opted_in = 48 * 1024;
      const std::size_t shared = staged_bytes(gemv_v4_in_flight_kernel<T>, cols, opted_in);
      launch_kernel(gemv_v4_in_flight_kernel<T>, ceil_div(rows, kWarpsPerBlock),
                    kWarpsPerBlock * 32, shared, stream, pdl, d_w, d_x,
                    static_cast<const float*>(nullptr), 0.0f, d_y, rows, cols, accumulate);
      return;
    }
    case GemvVersion::V5Pdl:
      launch_kernel(gemv_v5_pdl_kernel<T>, ceil_div(rows, kRowsPerBlock), kRowsPerBlock * 32, 0,
                    stream, pdl, d_w, d_x, d_y, rows, cols, accumulate);
      return;
    case GemvVersion::V6Deep:
      launch_kernel(gemv_v6_deep_kernel<T>, ceil_div(rows, kRowsPerBlock), kRowsPerBlock * 32, 0,
                    stream, pdl, d_w, d_x, d_y, rows, cols, accumulate);
      return;
    case GemvVersion::V7Slab: {
      const std::size_t row_bytes = sizeof(T) * static_cast<std::size_t>(cols);
      const int n = slab_units(row_bytes, 1, rows, 0);
      static std::size_t opted_in = 0;
      const std::size_t shared = slab_smem(gemv_v7_slab_kernel<T>, n * row_bytes, opted_in);
      if (shared == 0)  // a row longer than a block's shared memory: v5
        return gemv(GemvVersion::V5Pdl, d_w, d_x, d_y, rows, cols, accumulate, stream, pdl);
      launch_kernel(gemv_v7_slab_kernel<T>, ceil_div(rows, n), kSlabThreads, shared, stream, pdl,
                    d_w, d_x, d_y, rows, cols, n, accumulate);
      return;
    }
  }
  LAB_CUDA_CHECK_LAUNCH();
}

template void gemv<float>(GemvVersion, const float*, const float*, float*, int, int, bool,
                          cudaStream_t, bool);
template void gemv<bf16>(GemvVersion, const bf16*, const float*, float*, int, int, bool,
                         cudaStream_t, bool);
template bool decode_gemv_fusable<float>(const float*, const float*, int);
template bool decode_gemv_fusable<bf16>(const bf16*, const float*, int);
template void gemv_rmsnorm<float>(const float*, const float*, const float*, float, float*, int, int,
                                  cudaStream_t, bool, GemvVersion);
template void gemv_rmsnorm<bf16>(const bf16*, const float*, const float*, float, float*, int, int,
                                 cudaStream_t, bool, GemvVersion);
template void gemv_rmsnorm_qkv_rope<float>(const float*, const float*, const float*, float, float*,
                                           float*, float*, int, int, int, int, const double*,
                                           const int*, cudaStream_t, bool, GemvVersion);
template void gemv_rmsnorm_qkv_rope<bf16>(const bf16*, const float*, const float*, float, float*,
                                          bf16*, bf16*, int, int, int, int, const double*,
                                          const int*, cudaStream_t, bool, GemvVersion);
template void gemv_rmsnorm_swiglu<float>(const float*, const float*, const float*, float, float*,
                                         int, int, cudaStream_t, bool, GemvVersion);
template void gemv_rmsnorm_swiglu<bf16>(const bf16*, const float*, const float*, float, float*, int,
                                        int, cudaStream_t, bool, GemvVersion);

}  // namespace lab::cuda
