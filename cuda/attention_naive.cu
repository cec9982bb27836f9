// Naive attention (chapter 6): S = Q Kᵀ / √d is written to main memory in full, (H, n, n), then a
// softmax pass reads and rewrites it, then O = P V reads it again. Three passes over an n² array
// per head: the traffic FlashAttention (chapter 10) removes by never materialising S.
#include <cmath>

#include "cuda/check.cuh"
#include "cuda/kernels.hpp"
#include "cuda/reduce.cuh"

namespace lab::cuda {

//! [attention_scores]
// One thread per score S[h, i, j]: a length-d dot product of query i (head h) with key j (the
// key/value head g = h / group that HF's repeat_kv assigns).
__global__ void attention_scores_kernel(const float* q, const float* k, float* scores, int n,
                                        int heads, int kv_heads, int head_dim, float scale) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;  // key
  const int i = blockIdx.y;                             // query
  const int h = blockIdx.z;                             // query head
  if (j >= n) return;
  const int g = h / (heads / kv_heads);
  const float* qi = q + static_cast<long long>(i) * heads * head_dim + h * head_dim;
  const float* kj = k + static_cast<long long>(j) * kv_heads * head_dim + g * head_dim;
  float dot = 0.0f;
  for (int t = 0; t < head_dim; ++t) dot += qi[t] * kj[t];
  scores[(static_cast<long long>(h) * n + i) * n + j] = dot * scale;
}
//! [attention_scores]

//! [attention_values]
// One thread per output element O[i, h, t] = Σ_j P[h, i, j] · V[j, g, t].
__global__ void attention_values_kernel(const float* probs, const float* v, float* out, int n,
                                        int heads, int kv_heads, int head_dim) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x;  // dimension within the head
  const int i = blockIdx.y, h = blockIdx.z;
  if (t >= head_dim) return;
  const int g = h / (heads / kv_heads);
  const float* p = probs + (static_cast<long long>(h) * n + i) * n;
  float acc = 0.0f;
  for (int j = 0; j <= i; ++j)  // causal: P[h, i, j] is 0 for j > i
    acc += p[j] * v[static_cast<long long>(j) * kv_heads * head_dim + g * head_dim + t];
  out[static_cast<long long>(i) * heads * head_dim + h * head_dim + t] = acc;
}
//! [attention_values]

void attention_naive(const float* d_q, const float* d_k, const float* d_v, float* d_scores,
                     float* d_out, int n, int heads, int kv_heads, int head_dim,
                     cudaStream_t stream) {
  if (n == 0) return;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  attention_scores_kernel<<<dim3(ceil_div(n, 128), n, heads), 128, 0, stream>>>(
      d_q, d_k, d_scores, n, heads, kv_heads, head_dim, scale);
  LAB_CUDA_CHECK_LAUNCH();
  softmax_rows(d_scores, heads * n, n, /*causal=*/true, n, stream);
  attention_values_kernel<<<dim3(ceil_div(head_dim, 64), n, heads), 64, 0, stream>>>(
      d_scores, d_v, d_out, n, heads, kv_heads, head_dim);
  LAB_CUDA_CHECK_LAUNCH();
}

}  // namespace lab::cuda
