#pragma once
/// \file
/// \brief Host launchers of every kernel in cuda/, one topic a file, versions side by side.
///
/// All arrays are row-major and live on the device (`d_` pointers). Every launcher queues work on
/// `stream` and checks the launch; none synchronises. Weights follow the HF layout [out, in], so a
/// linear layer is y = x Wᵀ. Positions may come from the device (`d_pos`, may be null: then 0), so
/// that one captured CUDA graph serves every decode step.

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace lab::cuda {

using bf16 = __nv_bfloat16;

// --- embedding.cu -------------------------------------------------------------------------------
/// x[r, :] = table[tokens[r], :]. table (V, D), tokens (n) on the device, x (n, D) fp32.
template <typename T>
void embedding_gather(const T* d_table, const int* d_tokens, float* d_x, int n, int dim,
                      cudaStream_t stream);

// --- rmsnorm.cu ---------------------------------------------------------------------------------
/// y = x / sqrt(mean(x²) + eps) ⊙ gain, row by row. x, y (n, D) fp32; gain (D).
void rms_norm(const float* d_x, const float* d_gain, float* d_y, int n, int dim, float eps,
              cudaStream_t stream);

// --- rope.cu ------------------------------------------------------------------------------------
/// Rotates every head of x (n, heads·head_dim) in place, HF half-split pairing. Row r sits at
/// position first_position + (*d_pos if d_pos else 0) + r. inv_freq (head_dim/2, fp64: an fp32
/// frequency would carry its own 6e-8 relative error into every angle) on the device.
void apply_rope(float* d_x, int n, int heads, int head_dim, const double* d_inv_freq,
                int first_position, const int* d_pos, cudaStream_t stream);

// --- softmax.cu ---------------------------------------------------------------------------------
/// Row-wise softmax in place, s (rows, cols). When `causal`, row r is query (r % causal_period)
/// and only its first (r % causal_period) + 1 entries count; the rest become exactly 0.
void softmax_rows(float* d_s, int rows, int cols, bool causal, int causal_period,
                  cudaStream_t stream);

// --- attention_naive.cu -------------------------------------------------------------------------
/// Causal grouped-query attention with the scores materialised in main memory.
/// q (n, H·d), k, v (n, Hkv·d), scores scratch (H, n, n), out (n, H·d). fp32.
void attention_naive(const float* d_q, const float* d_k, const float* d_v, float* d_scores,
                     float* d_out, int n, int heads, int kv_heads, int head_dim,
                     cudaStream_t stream);

// --- attention_cached.cu ------------------------------------------------------------------------
/// Appends k_new, v_new (n, Hkv·d) fp32 to the cache (capacity, Hkv·d) at rows *d_pos + r.
template <typename T>
void kv_append(const float* d_k_new, const float* d_v_new, T* d_k_cache, T* d_v_cache, int n,
               int kv_dim, const int* d_pos, cudaStream_t stream);
/// Causal attention of n new queries (n, H·d) at positions *d_pos + r against the cache rows
/// [0, *d_pos + r]. `max_keys` bounds the keys any query sees (sizes the shared memory).
/// Versions: one block per (head, query) for prefill; for decode (n == 1) with a scratch of
/// attention_split_scratch_floats() floats, split-KV (flash-decoding): chunks of keys in parallel,
/// then a merge (v2, 16-byte loads, when head_dim % (16 / sizeof(T)) == 0 and head_dim <= 256;
/// else v1). With `d_split_counters` (one int per head, zeroed once; v2 leaves them at zero) v2's
/// last block of each head merges, without them a merge kernel follows. `split_kv_version` 3
/// (the default) runs v3, all of a chunk's loads at once, where it applies (counters, head_dim <=
/// 128); 2 keeps v2; 4 runs v3 and prefetches `prefetch_bytes` from `d_prefetch_l2` into L2 (the
/// next kernel's weights) while it waits on memory (v3 when no range is given). `pdl`: launched
/// with programmatic dependent launch (cuda/launch.cuh). Returns the number of kernels launched.
template <typename T>
int attention_cached(const float* d_q, const T* d_k_cache, const T* d_v_cache, float* d_out, int n,
                     int heads, int kv_heads, int head_dim, const int* d_pos, int max_keys,
                     cudaStream_t stream, float* d_split_scratch = nullptr, bool pdl = false,
                     int* d_split_counters = nullptr, int split_kv_version = 3,
                     const void* d_prefetch_l2 = nullptr, std::size_t prefetch_bytes = 0);
/// Floats of scratch the split-KV decode path needs: (m, l, o) per head and chunk of 32 keys.
inline std::int64_t attention_split_scratch_floats(int heads, int head_dim, int max_keys) {
  return static_cast<std::int64_t>(heads) * ((max_keys + 31) / 32) * (head_dim + 2);
}
/// *d_pos += n (after a forward wrote n rows into the cache).
void advance_position(int* d_pos, int n, cudaStream_t stream);

// --- swiglu.cu ----------------------------------------------------------------------------------
/// out[r, i] = silu(gate[r, i]) · up[r, i]; gate and up are read with row stride `in_stride`
/// (so that one fused gate_up (n, 2F) output can feed it), out (n, F).
void swiglu(const float* d_gate, const float* d_up, float* d_out, int n, int ffn, int in_stride,
            cudaStream_t stream);

// --- residual.cu --------------------------------------------------------------------------------
/// x += y, element-wise over `count` floats.
void residual_add(float* d_x, const float* d_y, std::int64_t count, cudaStream_t stream);

// --- matmul_naive.cu ----------------------------------------------------------------------------
/// y = x Wᵀ (+ y when accumulate): x (n, in), W (out, in), y (n, out). One thread per output.
void matmul_naive(const float* d_x, const float* d_w, float* d_y, int n, int in, int out,
                  bool accumulate, cudaStream_t stream);

// --- gemv.cu: decode's y = W x, the memory-bound heart of generation ----------------------------
enum class GemvVersion {
  V1Naive,     ///< one thread per row: neighbouring threads read addresses `in` apart
  V2Warp,      ///< one warp per row: the 32 lanes read neighbouring words (coalesced)
  V3Vector16,  ///< + 16-byte loads, several rows per block, 4 loads in flight per lane
  V4InFlight,  ///< + 8 loads in flight, x staged in shared memory (measured slower than v3)
  V5Pdl,       ///< v3 + its first weights issued before the PDL wait (cuda/launch.cuh)
  V6Deep,      ///< v5 with 8 loads in flight a lane, x still through L1
  V7Slab,      ///< a block's rows copied whole into shared memory (bulk copy) before the PDL wait
};
const char* to_string(GemvVersion version);
/// y[r] = (accumulate ? y[r] : 0) + Σ_c W[r, c] x[c]. W (rows, cols) in T (fp32 or bf16), x and
/// y fp32; accumulation in fp32. V3 to V7 need cols % (16 / sizeof(T)) == 0 and 16-byte aligned
/// rows; otherwise they fall back to V2 (V7 also falls back to V5 when one row exceeds a block's
/// shared memory). `pdl`: launch with programmatic dependent launch (cuda/launch.cuh; V4 to V7,
/// the others ignore it).
template <typename T>
void gemv(GemvVersion version, const T* d_w, const float* d_x, float* d_y, int rows, int cols,
          bool accumulate, cudaStream_t stream, bool pdl = false);

// --- gemv.cu: the decode step's fused GEMVs (one token; v4's blocks, RMSNorm folded in) --------
/// True when W (rows of `cols`) and x suit the fused GEMVs below: cols % (16 / sizeof(T)) == 0 and
/// 16-byte aligned. Otherwise a decoder uses the separate kernels. `family`: V7Slab runs v7's slab
/// kernels (the block's rows bulk-copied into shared memory before the PDL wait,
/// cuda/bulk_copy.cuh) where the rows fit; anything else (or rows that do not fit) the v4-based
/// ones.
template <typename T>
bool decode_gemv_fusable(const T* d_w, const float* d_x, int cols);
/// y = W · rmsnorm(x) = (W (x ⊙ gain)) / sqrt(mean(x²) + eps). W (rows, cols), x (cols) fp32.
template <typename T>
void gemv_rmsnorm(const T* d_w, const float* d_x, const float* d_gain, float eps, float* d_y,
                  int rows, int cols, cudaStream_t stream, bool pdl = false,
                  GemvVersion family = GemvVersion::V5Pdl);
/// The attention input of one token: n = rmsnorm(x), [q | k | v] = W_qkv n with W_qkv
/// (H·d + 2·Hkv·d, cols); RoPE at position *d_pos on q and k (HF half-split pairs, angles from
/// d_inv_freq in fp64 as apply_rope); q (H·d) written fp32, k and v converted to T into row *d_pos
/// of the caches (capacity, Hkv·d). Replaces rms_norm + gemv + 2 apply_rope + kv_append.
template <typename T>
void gemv_rmsnorm_qkv_rope(const T* d_w_qkv, const float* d_x, const float* d_gain, float eps,
                           float* d_q, T* d_k_cache, T* d_v_cache, int heads, int kv_heads,
                           int head_dim, int cols, const double* d_inv_freq, const int* d_pos,
                           cudaStream_t stream, bool pdl = false,
                           GemvVersion family = GemvVersion::V5Pdl);
/// act[i] = silu(g_i) · u_i with [g | u] = W_gate_up rmsnorm(x), W_gate_up (2·ffn, cols): gate rows
/// then up rows. Replaces rms_norm + gemv + swiglu.
template <typename T>
void gemv_rmsnorm_swiglu(const T* d_w_gate_up, const float* d_x, const float* d_gain, float eps,
                         float* d_act, int ffn, int cols, cudaStream_t stream, bool pdl = false,
                         GemvVersion family = GemvVersion::V5Pdl);

// --- convert.cu ---------------------------------------------------------------------------------
/// Rounds fp32 to bf16 (round to nearest even).
void to_bf16(const float* d_in, bf16* d_out, std::int64_t count, cudaStream_t stream);
/// Fills with N(0, σ²)-ish values (sum of uniforms) from a counter-based hash of (seed, index):
/// random weights of any size without building them on the host.
template <typename T>
void fill_random(T* d_out, std::int64_t count, std::uint64_t seed, float stddev, float mean,
                 cudaStream_t stream);

// --- argmax.cu ----------------------------------------------------------------------------------
/// *d_token = argmax(logits[0, V)), lowest index on ties (as the CPU's argmax). One block.
/// When d_history is non-null also writes the token to d_history[*d_step] and increments *d_step.
void argmax(const float* d_logits, int vocab, int* d_token, int* d_history, int* d_step,
            cudaStream_t stream);

// --- stream_read.cu -----------------------------------------------------------------------------
/// Reads `bytes` (a multiple of 16) with 16-byte loads and writes one word per block: the
/// bandwidth ceiling a memory-bound decode step is measured against.
/// d_sink must hold 8 × (multiprocessors) floats.
void stream_read(const void* d_data, std::int64_t bytes, float* d_sink, cudaStream_t stream);

}  // namespace lab::cuda
