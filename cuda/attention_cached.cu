// Attention against the KV cache (chapter 8). Prefill and decode share one kernel: query r of a
// call sits at position p = *d_pos + r and sees cache rows 0..p. The position comes from device
// memory so that a decode step captured once in a CUDA graph stays valid at every position.
#include <cmath>
#include <cstdint>

#include "cuda/check.cuh"
#include "cuda/kernels.hpp"
#include "cuda/launch.cuh"
#include "cuda/reduce.cuh"

namespace lab::cuda {

//! [kv_append]
// The cache grows by n rows: key/value of token r go to row *d_pos + r, converted to the cache's
// dtype (bf16 halves the bytes every later decode step must re-read).
template <typename T>
__global__ void kv_append_kernel(const float* k_new, const float* v_new, T* k_cache, T* v_cache,
                                 int kv_dim, const int* pos) {
  const int r = blockIdx.y;
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= kv_dim) return;
  const long long src = static_cast<long long>(r) * kv_dim + c;
  const long long dst = static_cast<long long>(*pos + r) * kv_dim + c;
  k_cache[dst] = from_float<T>(k_new[src]);
  v_cache[dst] = from_float<T>(v_new[src]);
}
//! [kv_append]

//! [attention_cached]
// One block per (query head, query). Scores for all visible keys live in shared memory (one float
// per key); warps take keys round-robin, lanes split the head dimension and reduce by shuffles.
// Then a block-wide softmax, then threads own output dimensions (coalesced reads of V rows), with
// the keys split among `blockDim / head_dim` groups whose partial sums meet in shared memory.
template <typename T>
__global__ void attention_cached_kernel(const float* q, const T* k_cache, const T* v_cache,
                                        float* out, int heads, int kv_heads, int head_dim,
                                        const int* pos, float scale) {
  extern __shared__ float shared[];  // [max_keys scores | 32 scratch | blockDim partial sums]
  const int h = blockIdx.x, r = blockIdx.y;
  const int keys = *pos + r + 1;
  const int g = h / (heads / kv_heads), kv_dim = kv_heads * head_dim;
  float* scores = shared;
  float* scratch = shared + keys;
  float* partial = scratch + 32;
  const float* qh = q + static_cast<long long>(r) * heads * head_dim + h * head_dim;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;

  // 1. Scores s_j = q·k_j / √d.
  for (int j = warp; j < keys; j += warps) {
    const T* kj = k_cache + static_cast<long long>(j) * kv_dim + g * head_dim;
    float dot = 0.0f;
    for (int t = lane; t < head_dim; t += 32) dot += qh[t] * to_float(kj[t]);
    dot = warp_sum(dot);
    if (lane == 0) scores[j] = dot * scale;
  }
  __syncthreads();

  // 2. Softmax over the visible keys.
  float m = -INFINITY;
  for (int j = threadIdx.x; j < keys; j += blockDim.x) m = fmaxf(m, scores[j]);
  m = block_max(m, scratch);
  float sum = 0.0f;
  for (int j = threadIdx.x; j < keys; j += blockDim.x) {
    const float e = expf(scores[j] - m);
    scores[j] = e;
    sum += e;
  }
  sum = block_sum(sum, scratch);  // ends with a barrier: every score is final

  // 3. out_t = Σ_j p_j v_j,t / sum.
  const int groups = blockDim.x / head_dim;  // head_dim ≤ blockDim (checked on the host)
  const int t = threadIdx.x % head_dim, group = threadIdx.x / head_dim;
  float acc = 0.0f;
  if (group < groups)
    for (int j = group; j < keys; j += groups)
      acc += scores[j] * to_float(v_cache[static_cast<long long>(j) * kv_dim + g * head_dim + t]);
  partial[threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.x < head_dim) {
    float total = 0.0f;
    for (int k = 0; k < groups; ++k) total += partial[k * head_dim + threadIdx.x];
    out[static_cast<long long>(r) * heads * head_dim + h * head_dim + threadIdx.x] = total / sum;
  }
}
//! [attention_cached]

//! [attention_split_kv]
// Decode (one query per head) with the block-per-query kernel above runs only H blocks on 132 SMs,
// each walking hundreds of keys one dependent load after another: latency-bound (measured: 210 us
// per llama2-7b layer at context 512, more than the layer's weights take to stream). Split-KV
// (flash-decoding) gives each block one chunk of kSplitKeys keys: it writes its chunk's maximum m,
// its sum l of exp(s - m) and its unnormalised output o = Σ exp(s - m) v; a second kernel merges
// the chunks, rescaling each by exp(m_chunk - m_max). Blocks whose chunk starts past the current
// position (known only on the device) exit at once, so one launch shape serves every step.
constexpr int kSplitKeys = 32;
static_assert(kSplitKeys == 32, "attention_split_scratch_floats() assumes 32 keys a chunk");

// One head's chunks (m_s, l_s, o_s) → out, by the whole block. Reads through L2 (__ldcg): in the
// split kernel v2 the chunks were written by other blocks of the same kernel.
__device__ inline void merge_chunks(const float* ph, float* out, int head_dim, int splits) {
  float m = -INFINITY;
  for (int s = 0; s < splits; ++s) m = fmaxf(m, __ldcg(ph + s * (head_dim + 2) + head_dim));
  for (int t = threadIdx.x; t < head_dim; t += blockDim.x) {
    float num = 0.0f, den = 0.0f;
    for (int s = 0; s < splits; ++s) {
      const float* chunk = ph + s * (head_dim + 2);
      const float w = expf(__ldcg(chunk + head_dim) - m);  // rescale chunk s to the global maximum
      num += w * __ldcg(chunk + t);
      den += w * __ldcg(chunk + head_dim + 1);
    }
    out[t] = num / den;
  }
}

// Block (h, split) of a split-KV kernel: the chunk of keys [first, first + count) it owns in head
// h's KV group (g = h / (heads / kv_heads), grouped-query attention), the element offset of key
// `first` of that group in the cache, and where its partial (o, m, l) goes. keys = *pos + 1 is
// known only on the device; a chunk with first >= keys holds no key (its count is meaningless).
struct SplitChunk {
  int h, splits, keys, first, count, kv_dim;
  long long head_offset;
  float* out;
};

__device__ inline SplitChunk split_chunk(float* partial, int heads, int kv_heads, int head_dim,
                                         const int* pos) {
  const int h = blockIdx.x, split = blockIdx.y, splits = gridDim.y;
  const int keys = *pos + 1, first = split * kSplitKeys, kv_dim = kv_heads * head_dim;
  const int g = h / (heads / kv_heads);
  return {h,
          splits,
          keys,
          first,
          min(kSplitKeys, keys - first),
          kv_dim,
          static_cast<long long>(first) * kv_dim + g * head_dim,
          partial + (static_cast<long long>(h) * splits + split) * (head_dim + 2)};
}

template <typename T>
__global__ void attention_split_kv_kernel(const float* q, const T* k_cache, const T* v_cache,
                                          float* partial, int heads, int kv_heads, int head_dim,
                                          const int* pos, float scale) {
  __shared__ float p[kSplitKeys];
  wait_for_previous_kernel();  // under PDL: q and the new cache row come from the kernel before
  allow_next_kernel();
  const auto [h, splits, keys, first, count, kv_dim, head_offset, out] =
      split_chunk(partial, heads, kv_heads, head_dim, pos);
  if (first >= keys) return;  // the merge reads only chunks that start below `keys`
  const float* qh = q + h * head_dim;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  for (int j = warp; j < count; j += warps) {
    const T* kj = k_cache + head_offset + static_cast<long long>(j) * kv_dim;
    float dot = 0.0f;
    for (int t = lane; t < head_dim; t += 32) dot += qh[t] * to_float(kj[t]);
    dot = warp_sum(dot);
    if (lane == 0) p[j] = dot * scale;
  }
  __syncthreads();
  float m = -INFINITY;
  for (int j = 0; j < count; ++j) m = fmaxf(m, p[j]);  // 32 values from shared memory
  float l = 0.0f;
  for (int t = threadIdx.x; t < head_dim; t += blockDim.x) {
    float acc = 0.0f;
    for (int j = 0; j < count; ++j)
      acc +=
          expf(p[j] - m) * to_float(v_cache[head_offset + static_cast<long long>(j) * kv_dim + t]);
    out[t] = acc;
  }
  for (int j = 0; j < count; ++j) l += expf(p[j] - m);
  if (threadIdx.x == 0) out[head_dim] = m, out[head_dim + 1] = l;
}

// The chunk's softmax numerators (v2 and v3): `dot` is a quarter of key j's q·k (four neighbouring
// lanes a key, part = lane % 4); the scores go to e[j], their maximum m is found, and e[j] becomes
// exp(score - m). Returns m; e is complete on return.
__device__ inline float chunk_softmax_numerators(float dot, int j, int part, int count, float scale,
                                                 float* e) {
  dot += __shfl_xor_sync(0xffffffffu, dot, 1);  // the 4 threads of a key are neighbouring lanes
  dot += __shfl_xor_sync(0xffffffffu, dot, 2);
  if (part == 0) e[j] = j < count ? dot * scale : -INFINITY;
  __syncthreads();
  float m = -INFINITY;
  for (int k = 0; k < count; ++k) m = fmaxf(m, e[k]);  // broadcast reads
  __syncthreads();                                     // everyone has m before e is overwritten
  if (part == 0) e[j] = j < count ? expf(e[j] - m) : 0.0f;
  __syncthreads();
  return m;
}

// The end of a split-KV chunk (v2 and v3): each thread's share of o = Σ_j e_j v_j (acc, column
// c of group `group`) is summed over the groups in shared memory and written as the chunk's
// partial (o, m, l) with l = Σ_j e_j.
template <int kVec>
__device__ inline void finish_chunk(const float (&acc)[kVec], float* sums, const float* e, float m,
                                    int count, int head_dim, int group, int groups, int c,
                                    float* out) {
  if (group < groups)
#pragma unroll
    for (int i = 0; i < kVec; ++i) sums[group * head_dim + c * kVec + i] = acc[i];
  __syncthreads();
  for (int t = threadIdx.x; t < head_dim; t += blockDim.x) {
    float total = 0.0f;
    for (int k = 0; k < groups; ++k) total += sums[k * head_dim + t];
    out[t] = total;
  }
  if (threadIdx.x == 0) {
    float l = 0.0f;
    for (int k = 0; k < count; ++k) l += e[k];
    out[head_dim] = m, out[head_dim + 1] = l;
  }
}

// Each block counts itself done on its head's counter, after a fence that publishes its partial;
// the block that completes the count, the head's last, merges all the head's chunks and resets
// the counter for the next step.
__device__ inline void merge_if_last(float* partial, int* counters, float* final_out, int h,
                                     int splits, int keys, int head_dim) {
  __shared__ bool last;
  int* done = counters + h;
  const int chunks = (keys + kSplitKeys - 1) / kSplitKeys;
  __threadfence();  // this thread's partial is visible to the whole GPU before the block counts
  __syncthreads();
  if (threadIdx.x == 0) last = atomicAdd(done, 1) == chunks - 1;
  __syncthreads();
  if (!last) return;
  __threadfence();
  merge_chunks(partial + static_cast<long long>(h) * splits * (head_dim + 2),
               final_out + h * head_dim, head_dim, chunks);
  if (threadIdx.x == 0) *done = 0;
}

//! [attention_split_kv_v2]
// Split-KV v2: the same chunks and the same partials, with 16-byte loads all issued up front. v1's
// score loop reads a key with 2-byte loads and reduces it across the warp before the next key's
// loads are issued (eight dependent trips to memory per warp), and every thread re-evaluates the
// 32 exponentials. Here four threads share a key, each loading a quarter of its 16-byte vectors at
// once; the chunk's exponentials are computed once into shared memory; for P·V each thread owns a
// 16-byte column of the head and a share of the keys (all its loads independent), and the groups'
// partial sums meet in shared memory. And no merge kernel: each block counts itself done on its
// head's counter (an atomic add after a fence that publishes its partial), and the block that
// completes the count, the head's last, merges all the head's chunks (merge_chunks) and resets the
// counter for the next step. One launch fewer per layer; which block merges varies, the order of
// the merge does not. Needs head_dim % (16 / sizeof(T)) == 0, head_dim <= 256, and for the
// merge one counter per head, zeroed once (without them, the merge kernel runs after).
constexpr int kSplitThreads = 128;
constexpr int kMaxHeadDim = 256;
static_assert(kSplitThreads == 4 * kSplitKeys, "four threads a key in the score phase");

template <typename T>
__global__ void __launch_bounds__(kSplitThreads)
    attention_split_kv_v2_kernel(const float* q, const T* k_cache, const T* v_cache, float* partial,
                                 int* counters, float* final_out, int heads, int kv_heads,
                                 int head_dim, const int* pos, float scale) {
  constexpr int kVec = 16 / sizeof(T);
  __shared__ __align__(16) float qs[kMaxHeadDim];
  __shared__ __align__(16) float sums[kSplitThreads * kVec];  // (groups, head_dim)
  __shared__ float s[kSplitKeys];
  wait_for_previous_kernel();
  allow_next_kernel();
  const auto [h, splits, keys, first, count, kv_dim, head_offset, out] =
      split_chunk(partial, heads, kv_heads, head_dim, pos);
  if (first >= keys) return;
  const int vcols = head_dim / kVec;
  for (int t = threadIdx.x; t < head_dim; t += blockDim.x) qs[t] = q[h * head_dim + t];
  __syncthreads();

  // 1. Scores: key j = thread / 4, the thread's quarter of its vectors.
  const int j = threadIdx.x / 4, part = threadIdx.x % 4;  // 128 threads = 32 keys x 4
  float dot = 0.0f;
  if (j < count) {
    const uint4* kj =
        reinterpret_cast<const uint4*>(k_cache + head_offset + static_cast<long long>(j) * kv_dim);
#pragma unroll 4
    for (int v = part; v < vcols; v += 4) dot += dot16_floats<T>(kj[v], qs + v * kVec);
  }
  const float m = chunk_softmax_numerators(dot, j, part, count, scale, s);

  // 2. o = Σ_j e_j v_j: thread (group, column c) takes keys group, group + groups, ...
  const int c = threadIdx.x % vcols, group = threadIdx.x / vcols, groups = blockDim.x / vcols;
  float acc[kVec] = {};
  if (group < groups)
#pragma unroll 4
    for (int k = group; k < count; k += groups) {
      const uint4 packed = *reinterpret_cast<const uint4*>(
          v_cache + head_offset + static_cast<long long>(k) * kv_dim + c * kVec);
      float v[kVec];
      unpack16<T>(packed, v);
#pragma unroll
      for (int i = 0; i < kVec; ++i) acc[i] += s[k] * v[i];
    }
  finish_chunk<kVec>(acc, sums, s, m, count, head_dim, group, groups, c, out);

  // 3. The head's last block merges (without counters: attention_merge_kernel does, after).
  if (counters != nullptr) merge_if_last(partial, counters, final_out, h, splits, keys, head_dim);
}
//! [attention_split_kv_v2]

//! [attention_split_kv_v3]
// Split-KV v3: v2's chunks, partials and merge, with every load of the chunk issued at once. v2
// waits for three memory trips in a row: q into shared memory (and a barrier), the keys, then,
// after the softmax, the values. The values do not depend on the scores, only their weights do,
// so v3 issues the values' loads together with the keys', and reads each thread's share of q
// straight into registers: one memory latency for the whole chunk, then arithmetic. The price is
// registers (a thread holds its keys' and values' vectors: 2 x 4 for bf16 at head_dim 128), so
// v3 takes head_dim <= 128; larger heads use v2.
constexpr int kMaxHeadDimV3 = 128;

// The v3 chunk, after the kernel's PDL wait: every load is issued before any is used, then
// `after_loads()` runs (v4 issues its L2 prefetches there, behind the chunk's own loads).
template <typename T, typename AfterLoads>
__device__ inline void split_kv_v3_chunk(const float* q, const T* k_cache, const T* v_cache,
                                         float* partial, int* counters, float* final_out, int heads,
                                         int kv_heads, int head_dim, const int* pos, float scale,
                                         AfterLoads after_loads) {
  constexpr int kVec = 16 / sizeof(T);
  constexpr int kLoads = kMaxHeadDimV3 / kVec / 4;  // a thread's key vectors = its value rows
  __shared__ __align__(16) float sums[kSplitThreads * kVec];
  __shared__ float s[kSplitKeys];
  const auto [h, splits, keys, first, count, kv_dim, head_offset, out] =
      split_chunk(partial, heads, kv_heads, head_dim, pos);
  if (first >= keys) {
    after_loads();
    return;
  }
  const int vcols = head_dim / kVec;
  const int j = threadIdx.x / 4, part = threadIdx.x % 4;  // scores: key j, a quarter of it
  const int c = threadIdx.x % vcols, group = threadIdx.x / vcols, groups = blockDim.x / vcols;

  // 1. Every load at once: the thread's key vectors, its value rows, its slice of q.
  const uint4* kj =
      reinterpret_cast<const uint4*>(k_cache + head_offset + static_cast<long long>(j) * kv_dim);
  uint4 kvec[kLoads], vvec[kLoads];
  float qs[kLoads][kVec];
#pragma unroll
  for (int i = 0; i < kLoads; ++i) {
    const int v = part + 4 * i, key = group + i * groups;
    kvec[i] = j < count && v < vcols ? kj[v] : make_uint4(0, 0, 0, 0);
    vvec[i] = group < groups && key < count
                  ? *reinterpret_cast<const uint4*>(v_cache + head_offset +
                                                    static_cast<long long>(key) * kv_dim + c * kVec)
                  : make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int e = 0; e < kVec; e += 4) {
      const float4 q4 = v < vcols
                            ? *reinterpret_cast<const float4*>(q + h * head_dim + v * kVec + e)
                            : make_float4(0, 0, 0, 0);
      qs[i][e] = q4.x, qs[i][e + 1] = q4.y, qs[i][e + 2] = q4.z, qs[i][e + 3] = q4.w;
    }
  }
  after_loads();

  // 2. Scores and the chunk's softmax numerators e_j = exp(s_j - m), as v2.
  float dot = 0.0f;
#pragma unroll
  for (int i = 0; i < kLoads; ++i) dot += dot16_floats<T>(kvec[i], qs[i]);
  const float m = chunk_softmax_numerators(dot, j, part, count, scale, s);

  // 3. o = Σ_j e_j v_j from the values already in registers; then the partial and the merge.
  float acc[kVec] = {};
#pragma unroll
  for (int i = 0; i < kLoads; ++i) {
    const int key = group + i * groups;
    if (group < groups && key < count) {
      float v[kVec];
      unpack16<T>(vvec[i], v);
#pragma unroll
      for (int e = 0; e < kVec; ++e) acc[e] += s[key] * v[e];
    }
  }
  finish_chunk<kVec>(acc, sums, s, m, count, head_dim, group, groups, c, out);
  merge_if_last(partial, counters, final_out, h, splits, keys, head_dim);
}

template <typename T>
__global__ void __launch_bounds__(kSplitThreads)
    attention_split_kv_v3_kernel(const float* q, const T* k_cache, const T* v_cache, float* partial,
                                 int* counters, float* final_out, int heads, int kv_heads,
                                 int head_dim, const int* pos, float scale) {
  wait_for_previous_kernel();
  allow_next_kernel();
  split_kv_v3_chunk<T>(q, k_cache, v_cache, partial, counters, final_out, heads, kv_heads, head_dim,
                       pos, scale, [] {});
}
//! [attention_split_kv_v3]

//! [attention_split_kv_v4]
// Split-KV v4: v3, and while it waits on memory the kernel fills L2 with the next kernel's
// weights. Attention at decode is latency-bound: a layer's 8 MB of keys and values (llama2-7b,
// context 512) would stream in ~2 us, the kernel takes ~11 us, and for the rest HBM sits idle.
// The o projection that follows reads 33.5 MB of weights, which fit in the H100's and H200's
// 50 MB L2. So every block, the empty ones too, issues `prefetch.global.L2` for its share of
// those bytes (128-byte lines, after its own loads so that they are not queued behind the
// prefetches), and o's GEMV then finds its weights in L2. Nothing waits on a prefetch and nothing
// depends on it: the results are v3's bit for bit; only where the bytes come from changes.
constexpr int kL2Line = 128;

__device__ inline void prefetch_l2_share(const char* bytes, long long count) {
  const long long blocks = static_cast<long long>(gridDim.x) * gridDim.y;
  const long long block = static_cast<long long>(blockIdx.y) * gridDim.x + blockIdx.x;
  const long long lines = (count + kL2Line - 1) / kL2Line;
  const long long per_block = (lines + blocks - 1) / blocks;
  const long long first = block * per_block, last = min(lines, first + per_block);
  for (long long line = first + threadIdx.x; line < last; line += blockDim.x)
    asm volatile("prefetch.global.L2 [%0];" ::"l"(bytes + line * kL2Line));
}

template <typename T>
__global__ void __launch_bounds__(kSplitThreads)
    attention_split_kv_v4_kernel(const float* q, const T* k_cache, const T* v_cache, float* partial,
                                 int* counters, float* final_out, int heads, int kv_heads,
                                 int head_dim, const int* pos, float scale, const char* prefetch,
                                 long long prefetch_bytes) {
  wait_for_previous_kernel();  // before the prefetches too: the kernel before streams its own
  allow_next_kernel();         // weights, which would evict the lines again
  split_kv_v3_chunk<T>(q, k_cache, v_cache, partial, counters, final_out, heads, kv_heads, head_dim,
                       pos, scale, [&] { prefetch_l2_share(prefetch, prefetch_bytes); });
}
//! [attention_split_kv_v4]

__global__ void attention_merge_kernel(const float* partial, float* out, int head_dim,
                                       int max_splits, const int* pos) {
  wait_for_previous_kernel();
  allow_next_kernel();
  const int h = blockIdx.x;
  const int splits = (*pos + 1 + kSplitKeys - 1) / kSplitKeys;  // chunks that hold keys
  merge_chunks(partial + static_cast<long long>(h) * max_splits * (head_dim + 2),
               out + h * head_dim, head_dim, splits);
}
//! [attention_split_kv]

__global__ void advance_position_kernel(int* pos, int n) {
  *pos += n;
}

template <typename T>
void kv_append(const float* d_k_new, const float* d_v_new, T* d_k_cache, T* d_v_cache, int n,
               int kv_dim, const int* d_pos, cudaStream_t stream) {
  if (n == 0) return;
  kv_append_kernel<<<dim3(ceil_div(kv_dim, 256), n), 256, 0, stream>>>(d_k_new, d_v_new, d_k_cache,
                                                                       d_v_cache, kv_dim, d_pos);
  LAB_CUDA_CHECK_LAUNCH();
}

template <typename T>
int attention_cached(const float* d_q, const T* d_k_cache, const T* d_v_cache, float* d_out, int n,
                     int heads, int kv_heads, int head_dim, const int* d_pos, int max_keys,
                     cudaStream_t stream, float* d_split_scratch, bool pdl, int* d_split_counters,
                     int split_kv_version, const void* d_prefetch_l2, std::size_t prefetch_bytes) {
  if (n == 0) return 0;
  const int threads = 256;
  require(head_dim <= threads, "attention_cached: head_dim " + std::to_string(head_dim) +
                                   " exceeds the block of " + std::to_string(threads));
  const std::size_t shared = sizeof(float) * (static_cast<std::size_t>(max_keys) + 32 + threads);
  // Beyond 48 KB a kernel must opt in to more dynamic shared memory (227 KB on Hopper).
  static std::size_t opted_in = 48 * 1024;
  if (shared > opted_in) {
    LAB_CUDA_CHECK(cudaFuncSetAttribute(attention_cached_kernel<T>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(shared)));
    opted_in = shared;
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  if (n == 1 && d_split_scratch != nullptr) {  // decode: split-KV
    const int max_splits = (max_keys + kSplitKeys - 1) / kSplitKeys;
    constexpr int kVec = 16 / sizeof(T);
    const bool vector16 = head_dim % kVec == 0 && head_dim <= kMaxHeadDim &&
                          reinterpret_cast<std::uintptr_t>(d_k_cache) % 16 == 0 &&
                          reinterpret_cast<std::uintptr_t>(d_v_cache) % 16 == 0;
    // v3 needs the last-block merge (counters), head_dim <= 128 and a 16-byte aligned q.
    const bool v3 = vector16 && split_kv_version >= 3 && d_split_counters != nullptr &&
                    head_dim <= kMaxHeadDimV3 && reinterpret_cast<std::uintptr_t>(d_q) % 16 == 0;
    if (v3 && split_kv_version >= 4 && d_prefetch_l2 != nullptr) {
      launch_kernel(attention_split_kv_v4_kernel<T>, dim3(heads, max_splits), kSplitThreads, 0,
                    stream, pdl, d_q, d_k_cache, d_v_cache, d_split_scratch, d_split_counters,
                    d_out, heads, kv_heads, head_dim, d_pos, scale,
                    static_cast<const char*>(d_prefetch_l2),
                    static_cast<long long>(prefetch_bytes));
      return 1;
    }
    if (v3) {
      launch_kernel(attention_split_kv_v3_kernel<T>, dim3(heads, max_splits), kSplitThreads, 0,
                    stream, pdl, d_q, d_k_cache, d_v_cache, d_split_scratch, d_split_counters,
                    d_out, heads, kv_heads, head_dim, d_pos, scale);
      return 1;
    }
    if (vector16) {
      launch_kernel(attention_split_kv_v2_kernel<T>, dim3(heads, max_splits), kSplitThreads, 0,
                    stream, pdl, d_q, d_k_cache, d_v_cache, d_split_scratch, d_split_counters,
                    d_out, heads, kv_heads, head_dim, d_pos, scale);
      if (d_split_counters != nullptr) return 1;
    } else {
      launch_kernel(attention_split_kv_kernel<T>, dim3(heads, max_splits), kSplitThreads, 0, stream,
                    pdl, d_q, d_k_cache, d_v_cache, d_split_scratch, heads, kv_heads, head_dim,
                    d_pos, scale);
    }
    launch_kernel(attention_merge_kernel, heads, 128, 0, stream, pdl,
                  static_cast<const float*>(d_split_scratch), d_out, head_dim, max_splits, d_pos);
    return 2;
  }
  attention_cached_kernel<T><<<dim3(heads, n), threads, shared, stream>>>(
      d_q, d_k_cache, d_v_cache, d_out, heads, kv_heads, head_dim, d_pos, scale);
  LAB_CUDA_CHECK_LAUNCH();
  return 1;
}

void advance_position(int* d_pos, int n, cudaStream_t stream) {
  advance_position_kernel<<<1, 1, 0, stream>>>(d_pos, n);
  LAB_CUDA_CHECK_LAUNCH();
}

template void kv_append<float>(const float*, const float*, float*, float*, int, int, const int*,
                               cudaStream_t);
template void kv_append<bf16>(const float*, const float*, bf16*, bf16*, int, int, const int*,
                              cudaStream_t);
template int attention_cached<float>(const float*, const float*, const float*, float*, int, int,
                                     int, int, const int*, int, cudaStream_t, float*, bool, int*,
                                     int, const void*, std::size_t);
template int attention_cached<bf16>(const float*, const bf16*, const bf16*, float*, int, int, int,
                                    int, const int*, int, cudaStream_t, float*, bool, int*, int,
                                    const void*, std::size_t);

}  // namespace lab::cuda
