#include "cpu_reference/transformer.hpp"

#include <string>

#include "common/error.hpp"

namespace lab::cpu {

// ---------------------------------------------------------------------------------------------
// KV cache

template <typename T>
KVCache<T>::KVCache(const ModelConfig& config, int capacity) : capacity_(capacity) {
  require(capacity > 0, "the KV cache needs room for at least one token, got capacity " +
                            std::to_string(capacity));
  // Allocated once: (capacity, H_kv·d) for K and for V in every layer.
  for (int l = 0; l < config.num_layers; ++l) {
    keys_.emplace_back(Matrix<T>::Zero(capacity, config.kv_dim()));
    values_.emplace_back(Matrix<T>::Zero(capacity, config.kv_dim()));
  }
}

template <typename T>
std::int64_t KVCache<T>::bytes() const {
  std::int64_t total = 0;
  for (std::size_t l = 0; l < keys_.size(); ++l)
    total += static_cast<std::int64_t>(keys_[l].size() + values_[l].size()) *
             static_cast<std::int64_t>(sizeof(T));
  return total;
}

template <typename T>
void KVCache<T>::advance(int tokens) {
  require(tokens >= 0 && length_ + tokens <= capacity_, "KV cache overflow");
  length_ += tokens;
}

// ---------------------------------------------------------------------------------------------
// Model

namespace {

template <typename T>
Matrix<T> to_matrix(const Tensor& t) {
  Matrix<T> m(t.rows(), t.cols());
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<T>(t.data[i]);
  return m;
}

template <typename T>
Vector<T> to_vector(const Tensor& t) {
  Vector<T> v(t.numel());
  for (Eigen::Index i = 0; i < v.size(); ++i) v[i] = static_cast<T>(t.data[i]);
  return v;
}

}  // namespace

template <typename T>
Transformer<T>::Transformer(const ModelWeights& w) : config_(w.config) {
  validate(w);
  embed_tokens_ = to_matrix<T>(w.at("model.embed_tokens.weight"));
  for (int l = 0; l < config_.num_layers; ++l) {
    auto get = [&](const char* suffix) { return layer_tensor_name(l, suffix); };
    Layer layer;
    layer.attn_norm = to_vector<T>(w.at(get("input_layernorm.weight")));
    layer.wq = to_matrix<T>(w.at(get("self_attn.q_proj.weight")));
    layer.wk = to_matrix<T>(w.at(get("self_attn.k_proj.weight")));
    layer.wv = to_matrix<T>(w.at(get("self_attn.v_proj.weight")));
    layer.wo = to_matrix<T>(w.at(get("self_attn.o_proj.weight")));
    layer.mlp_norm = to_vector<T>(w.at(get("post_attention_layernorm.weight")));
    layer.w_gate = to_matrix<T>(w.at(get("mlp.gate_proj.weight")));
    layer.w_up = to_matrix<T>(w.at(get("mlp.up_proj.weight")));
    layer.w_down = to_matrix<T>(w.at(get("mlp.down_proj.weight")));
    layers_.push_back(std::move(layer));
  }
  final_norm_ = to_vector<T>(w.at("model.norm.weight"));
  if (!config_.tie_word_embeddings) lm_head_ = to_matrix<T>(w.at("lm_head.weight"));
  inv_freq_ = rope_inverse_frequencies(config_.head_dim, config_.rope_theta);
}

template <typename T>
void Transformer<T>::check_tokens(std::span<const int> tokens, int past) const {
  require(!tokens.empty(), "empty input: at least one token is needed");
  for (std::size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= config_.vocab_size)
      throw Error("token id " + std::to_string(tokens[i]) + " at position " + std::to_string(i) +
                  " is outside the vocabulary (0.." + std::to_string(config_.vocab_size - 1) + ")");
  const auto end = static_cast<std::int64_t>(past) + static_cast<std::int64_t>(tokens.size());
  if (end > config_.max_seq_len)
    throw Error("context of " + std::to_string(end) + " tokens exceeds the model's max_seq_len " +
                std::to_string(config_.max_seq_len));
}

template <typename T>
Matrix<T> Transformer<T>::embed(std::span<const int> tokens) const {
  Matrix<T> x(static_cast<Eigen::Index>(tokens.size()), config_.hidden_size);  // (n, D)
  for (std::size_t i = 0; i < tokens.size(); ++i)
    x.row(static_cast<Eigen::Index>(i)) = embed_tokens_.row(tokens[i]);
  return x;
}

//! [block]
template <typename T>
void Transformer<T>::block(const Layer& layer, Matrix<T>& x, Matrix<T>& keys, Matrix<T>& values,
                           int past, AttentionMask mask) const {
  const ModelConfig& c = config_;
  const auto n = static_cast<int>(x.rows());
  // Attention sub-layer: x += Wo · Attn(RoPE(Wq n1), RoPE(Wk n1), Wv n1), n1 = RMSNorm(x).
  const Matrix<T> n1 = rms_norm(x, layer.attn_norm, c.rms_norm_eps);  // (n, D)
  Matrix<T> q = linear(n1, layer.wq);                                 // (n, H·d)
  Matrix<T> k = linear(n1, layer.wk);                                 // (n, H_kv·d)
  apply_rope(q, c.num_heads, c.head_dim, past, inv_freq_);
  apply_rope(k, c.num_kv_heads, c.head_dim, past, inv_freq_);
  // The new keys/values go after the `past` ones already there; attention then reads all of them.
  keys.middleRows(past, n) = k;
  values.middleRows(past, n) = linear(n1, layer.wv);
  const Matrix<T> a = attention<T>(q, keys.topRows(past + n), values.topRows(past + n), c.num_heads,
                                   c.num_kv_heads, past, mask);  // (n, H·d)
  x += linear(a, layer.wo);
  // MLP sub-layer: x += W_down (silu(W_gate n2) ⊙ W_up n2), n2 = RMSNorm(x).
  const Matrix<T> n2 = rms_norm(x, layer.mlp_norm, c.rms_norm_eps);  // (n, D)
  x += linear(swiglu(linear(n2, layer.w_gate), linear(n2, layer.w_up)), layer.w_down);
}
//! [block]

template <typename T>
Matrix<T> Transformer<T>::logits(const Matrix<T>& x) const {
  const Matrix<T> h = rms_norm(x, final_norm_, config_.rms_norm_eps);        // (n, D)
  return linear(h, config_.tie_word_embeddings ? embed_tokens_ : lm_head_);  // (n, V)
}

//! [teacher_forcing]
template <typename T>
Matrix<T> Transformer<T>::forward(std::span<const int> tokens, AttentionMask mask) const {
  check_tokens(tokens, 0);
  const auto n = static_cast<Eigen::Index>(tokens.size());
  Matrix<T> x = embed(tokens);  // (n, D): the residual stream
  // Every position at once: the keys/values of this pass live only as long as their layer.
  Matrix<T> keys(n, config_.kv_dim()), values(n, config_.kv_dim());
  for (const Layer& layer : layers_) block(layer, x, keys, values, /*past=*/0, mask);
  return logits(x);  // (n, V): row i is the prediction for token i + 1
}
//! [teacher_forcing]

//! [cached_forward]
template <typename T>
Matrix<T> Transformer<T>::forward(std::span<const int> tokens, KVCache<T>& cache,
                                  AttentionMask mask, bool all_logits) const {
  const int past = cache.length();
  require(tokens.size() <= static_cast<std::size_t>(cache.capacity() - past),
          std::to_string(tokens.size()) + " new tokens do not fit in the KV cache (capacity " +
              std::to_string(cache.capacity()) + ", " + std::to_string(past) + " in use)");
  check_tokens(tokens, past);
  Matrix<T> x = embed(tokens);  // (n, D)
  for (std::size_t l = 0; l < layers_.size(); ++l)
    block(layers_[l], x, cache.keys(static_cast<int>(l)), cache.values(static_cast<int>(l)), past,
          mask);
  cache.advance(static_cast<int>(tokens.size()));
  // Generation needs only the last position's logits: skip the (n, V) projection of the rest.
  return all_logits ? logits(x) : logits(x.bottomRows(1));
}
//! [cached_forward]

template <typename T>
std::vector<float> to_floats(const Matrix<T>& m) {
  std::vector<float> out(static_cast<std::size_t>(m.size()));
  for (Eigen::Index i = 0; i < m.size(); ++i)
    out[static_cast<std::size_t>(i)] = static_cast<float>(m.data()[i]);
  return out;
}

std::vector<double> teacher_forced_logits_fp64(const ModelWeights& weights,
                                               std::span<const int> tokens) {
  const Matrix<double> logits = Transformer<double>(weights).forward(tokens);
  return std::vector<double>(logits.data(), logits.data() + logits.size());
}

std::vector<float> teacher_forced_logits(const ModelWeights& weights, std::span<const int> tokens) {
  return to_floats(Transformer<float>(weights).forward(tokens));
}

template class KVCache<float>;
template class KVCache<double>;
template class Transformer<float>;
template class Transformer<double>;
template std::vector<float> to_floats<float>(const Matrix<float>&);
template std::vector<float> to_floats<double>(const Matrix<double>&);

}  // namespace lab::cpu
