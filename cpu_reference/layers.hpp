#pragma once
/// \file
/// \brief The layers of a Llama decoder on the CPU (Eigen): RMSNorm, RoPE, grouped-query attention
/// with a causal or bidirectional mask, SwiGLU. Templated on the scalar so that the same code runs
/// in fp32 (the reference) and fp64 (the tighter oracle used by tests).

#include <Eigen/Core>
#include <string>
#include <vector>

namespace lab::cpu {

/// Row-major dynamic matrix: one row per token, like the HF layout of activations.
template <typename T>
using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
/// Column vector (norm gains).
template <typename T>
using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;

/// Which keys a query may attend to.
enum class AttentionMask {
  Causal,        ///< query at position p sees keys at positions 0..p (decoder-only LLMs)
  Bidirectional  ///< every query sees every key (BERT-style encoders, 双向注意力)
};

/// "causal" / "bidirectional".
std::string to_string(AttentionMask mask);
/// Parses "causal" or "bidirectional"; throws lab::Error otherwise.
AttentionMask parse_attention_mask(const std::string& text);

/// RMSNorm: y = x / sqrt(mean(x²) + eps) ⊙ gain, row by row. x: (n, D).
template <typename T>
Matrix<T> rms_norm(const Matrix<T>& x, const Vector<T>& gain, double eps);

/// RoPE inverse frequencies inv_freq_i = theta^(-2i/d), i = 0..d/2-1.
std::vector<double> rope_inverse_frequencies(int head_dim, double theta);

/// Rotates every head of x in place with HF's half-split pairing (i, i + d/2):
/// x'_i = x_i cos − x_{i+d/2} sin, x'_{i+d/2} = x_{i+d/2} cos + x_i sin, angle = pos · inv_freq_i.
/// x: (n, heads · head_dim); row r sits at position first_position + r.
template <typename T>
void apply_rope(Matrix<T>& x, int heads, int head_dim, int first_position,
                const std::vector<double>& inv_freq);

/// Grouped-query scaled dot-product attention.
/// q: (n, H·d) for the n new tokens at positions past..past+n−1; k, v: (L, H_kv·d) for all L keys
/// (L ≥ past + n for the causal mask). Query head h reads key/value head h / (H / H_kv).
/// Returns (n, H·d).
template <typename T>
Matrix<T> attention(const Matrix<T>& q, const Eigen::Ref<const Matrix<T>>& k,
                    const Eigen::Ref<const Matrix<T>>& v, int num_heads, int num_kv_heads, int past,
                    AttentionMask mask);

/// SwiGLU gate: silu(gate) ⊙ up, silu(z) = z / (1 + e^−z). Both (n, F).
template <typename T>
Matrix<T> swiglu(const Matrix<T>& gate, const Matrix<T>& up);

/// y = x Wᵀ for an HF Linear weight W of shape [out, in]. x: (n, in) → (n, out).
/// One row (decode) is a matrix-vector product split over threads; more rows are a GEMM.
template <typename T>
Matrix<T> linear(const Matrix<T>& x, const Matrix<T>& weight);

/// Uses `threads` threads for Eigen's GEMM and the decode GEMV (0 = all cores).
void set_num_threads(int threads);
/// Threads in use.
int num_threads();

}  // namespace lab::cpu
