#pragma once
/// \file
/// \brief The Llama decoder on the CPU: teacher-forced forward (chapter 2) and the KV-cached
/// forward (chapter 4). The oracle every GPU chapter is checked against.

#include <cstdint>
#include <span>
#include <vector>

#include "common/weights.hpp"
#include "cpu_reference/layers.hpp"

namespace lab::cpu {

/// Keys and values of every layer for up to `capacity` tokens, allocated once up front so that
/// decoding never reallocates (and so that running out of room is an error, not a slowdown).
template <typename T>
class KVCache {
 public:
  /// An empty cache for `config` with room for `capacity` tokens.
  KVCache(const ModelConfig& config, int capacity);

  /// Tokens the cache can hold.
  int capacity() const { return capacity_; }
  /// Tokens cached so far (the position of the next token).
  int length() const { return length_; }
  /// Forgets every token (keeps the memory).
  void clear() { length_ = 0; }
  /// Bytes allocated for keys and values: 2 · layers · capacity · H_kv · d · sizeof(T).
  std::int64_t bytes() const;

  /// Keys of `layer`: (capacity, H_kv·d); rows [0, length()) are valid.
  Matrix<T>& keys(int layer) { return keys_[static_cast<std::size_t>(layer)]; }
  /// Values of `layer`: (capacity, H_kv·d).
  Matrix<T>& values(int layer) { return values_[static_cast<std::size_t>(layer)]; }
  /// Marks `tokens` more rows as valid, after every layer wrote them.
  void advance(int tokens);

 private:
  int capacity_ = 0;
  int length_ = 0;
  std::vector<Matrix<T>> keys_, values_;
};

/// A Llama-family decoder with its weights converted to scalar T (float or double).
template <typename T>
class Transformer {
 public:
  /// Validates `weights` and copies them into Eigen matrices of T.
  explicit Transformer(const ModelWeights& weights);

  const ModelConfig& config() const { return config_; }

  /// Teacher forcing (chapter 2): one pass over the whole sequence. Returns the logits of every
  /// position, (n, V); row i predicts token i + 1. Throws lab::Error for an empty sequence, an id
  /// outside the vocabulary or a sequence longer than max_seq_len.
  Matrix<T> forward(std::span<const int> tokens, AttentionMask mask = AttentionMask::Causal) const;

  /// Cached forward (chapter 4): runs `tokens` at positions cache.length().., attending to the
  /// cached keys/values plus their own, appends their keys/values and returns the logits of every
  /// new token (all_logits) or of the last one only, (1, V). Prefill is one call with the prompt;
  /// a decode step is one call with one token. Throws lab::Error when the tokens do not fit.
  Matrix<T> forward(std::span<const int> tokens, KVCache<T>& cache,
                    AttentionMask mask = AttentionMask::Causal, bool all_logits = false) const;

 private:
  struct Layer {
    Vector<T> attn_norm, mlp_norm;   // (D)
    Matrix<T> wq, wk, wv, wo;        // [H·d, D], [H_kv·d, D] ×2, [D, H·d]
    Matrix<T> w_gate, w_up, w_down;  // [F, D] ×2, [D, F]
  };
  void check_tokens(std::span<const int> tokens, int past) const;
  Matrix<T> embed(std::span<const int> tokens) const;
  void block(const Layer& layer, Matrix<T>& x, Matrix<T>& keys, Matrix<T>& values, int past,
             AttentionMask mask) const;
  Matrix<T> logits(const Matrix<T>& x) const;

  ModelConfig config_;
  Matrix<T> embed_tokens_;  // [V, D]
  std::vector<Layer> layers_;
  Vector<T> final_norm_;  // (D)
  Matrix<T> lm_head_;     // [V, D]; empty when tied to embed_tokens_
  std::vector<double> inv_freq_;
};

/// Teacher-forced logits of `tokens` computed in fp64, (n, V) row-major: the tightest oracle, for
/// comparisons against external references (HF transformers fixtures).
std::vector<double> teacher_forced_logits_fp64(const ModelWeights& weights,
                                               std::span<const int> tokens);
/// The same in fp32, the course's reference precision.
std::vector<float> teacher_forced_logits(const ModelWeights& weights, std::span<const int> tokens);

/// Copies a row-major Eigen matrix into a flat vector of float (for lab::compare).
template <typename T>
std::vector<float> to_floats(const Matrix<T>& m);

}  // namespace lab::cpu
