// Attention against the KV cache (chapter 8). Prefill and decode share one kernel: query r of a
// call sits at position p = *d_pos + r and sees cache rows 0..p. The position comes from device
// memory so that a decode step captured once in a CUDA graph stays valid at every position.
#include <cmath>

#include "cuda/check.cuh"
#include "cuda/kernels.hpp"
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

template <typename T>
__global__ void attention_split_kv_kernel(const float* q, const T* k_cache, const T* v_cache,
                                          float* partial, int heads, int kv_heads, int head_dim,
                                          const int* pos, float scale) {
  __shared__ float p[kSplitKeys];
  const int h = blockIdx.x, split = blockIdx.y, splits = gridDim.y;
  const int keys = *pos + 1, first = split * kSplitKeys;
  float* out = partial + (static_cast<long long>(h) * splits + split) * (head_dim + 2);
  if (first >= keys) return;  // the merge reads only chunks that start below `keys`
  const int count = min(kSplitKeys, keys - first);
  const int g = h / (heads / kv_heads), kv_dim = kv_heads * head_dim;
  const float* qh = q + h * head_dim;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  for (int j = warp; j < count; j += warps) {
    const T* kj = k_cache + static_cast<long long>(first + j) * kv_dim + g * head_dim;
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
      acc += expf(p[j] - m) *
             to_float(v_cache[static_cast<long long>(first + j) * kv_dim + g * head_dim + t]);
    out[t] = acc;
  }
  for (int j = 0; j < count; ++j) l += expf(p[j] - m);
  if (threadIdx.x == 0) out[head_dim] = m, out[head_dim + 1] = l;
}

__global__ void attention_merge_kernel(const float* partial, float* out, int head_dim,
                                       int max_splits, const int* pos) {
  const int h = blockIdx.x;
  const int splits = (*pos + 1 + kSplitKeys - 1) / kSplitKeys;  // chunks that hold keys
  const float* ph = partial + static_cast<long long>(h) * max_splits * (head_dim + 2);
  float m = -INFINITY;
  for (int s = 0; s < splits; ++s) m = fmaxf(m, ph[s * (head_dim + 2) + head_dim]);
  for (int t = threadIdx.x; t < head_dim; t += blockDim.x) {
    float num = 0.0f, den = 0.0f;
    for (int s = 0; s < splits; ++s) {
      const float* chunk = ph + s * (head_dim + 2);
      const float w = expf(chunk[head_dim] - m);  // rescale chunk s to the global maximum
      num += w * chunk[t];
      den += w * chunk[head_dim + 1];
    }
    out[h * head_dim + t] = num / den;
  }
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
void attention_cached(const float* d_q, const T* d_k_cache, const T* d_v_cache, float* d_out, int n,
                      int heads, int kv_heads, int head_dim, const int* d_pos, int max_keys,
                      cudaStream_t stream, float* d_split_scratch) {
  if (n == 0) return;
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
    attention_split_kv_kernel<T><<<dim3(heads, max_splits), 128, 0, stream>>>(
        d_q, d_k_cache, d_v_cache, d_split_scratch, heads, kv_heads, head_dim, d_pos, scale);
    LAB_CUDA_CHECK_LAUNCH();
    attention_merge_kernel<<<heads, 128, 0, stream>>>(d_split_scratch, d_out, head_dim, max_splits,
                                                      d_pos);
    LAB_CUDA_CHECK_LAUNCH();
    return;
  }
  attention_cached_kernel<T><<<dim3(heads, n), threads, shared, stream>>>(
      d_q, d_k_cache, d_v_cache, d_out, heads, kv_heads, head_dim, d_pos, scale);
  LAB_CUDA_CHECK_LAUNCH();
}

void advance_position(int* d_pos, int n, cudaStream_t stream) {
  advance_position_kernel<<<1, 1, 0, stream>>>(d_pos, n);
  LAB_CUDA_CHECK_LAUNCH();
}

template void kv_append<float>(const float*, const float*, float*, float*, int, int, const int*,
                               cudaStream_t);
template void kv_append<bf16>(const float*, const float*, bf16*, bf16*, int, int, const int*,
                              cudaStream_t);
template void attention_cached<float>(const float*, const float*, const float*, float*, int, int,
                                      int, int, const int*, int, cudaStream_t, float*);
template void attention_cached<bf16>(const float*, const bf16*, const bf16*, float*, int, int, int,
                                     int, const int*, int, cudaStream_t, float*);

}  // namespace lab::cuda
