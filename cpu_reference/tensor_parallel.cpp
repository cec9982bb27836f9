#include "cpu_reference/tensor_parallel.hpp"

#include "common/error.hpp"

namespace lab::cpu {

namespace {

// A row-major [rows, cols] float array as an fp64 matrix.
Matrix<double> as_matrix(const std::vector<float>& data, std::int64_t rows, std::int64_t cols) {
  require(static_cast<std::int64_t>(data.size()) == rows * cols, "as_matrix: size mismatch");
  Matrix<double> m(rows, cols);
  for (std::int64_t i = 0; i < rows * cols; ++i) m.data()[i] = data[static_cast<std::size_t>(i)];
  return m;
}

Vector<double> as_vector(const Tensor& t) {
  Vector<double> v(static_cast<Eigen::Index>(t.data.size()));
  for (std::size_t i = 0; i < t.data.size(); ++i) v[static_cast<Eigen::Index>(i)] = t.data[i];
  return v;
}

}  // namespace

//! [attention_partial]
Matrix<double> attention_partial(const ModelConfig& c, const LayerShard& w,
                                 const TensorParallelShard& s, const Matrix<double>& h) {
  const std::int64_t D = c.hidden_size, qd = s.q_dim(c.head_dim), kvd = s.kv_dim(c.head_dim);
  const Matrix<double> w_qkv = as_matrix(w.w_qkv, qd + 2 * kvd, D);
  // Column-parallel q, k, v: this rank's heads only, from the full input h.
  Matrix<double> q = linear(h, Matrix<double>(w_qkv.topRows(qd)));            // (n, qd)
  Matrix<double> k = linear(h, Matrix<double>(w_qkv.middleRows(qd, kvd)));    // (n, kvd)
  const Matrix<double> v = linear(h, Matrix<double>(w_qkv.bottomRows(kvd)));  // (n, kvd)
  const auto inv_freq = rope_inverse_frequencies(c.head_dim, c.rope_theta);
  apply_rope(q, s.q_heads, c.head_dim, 0, inv_freq);
  apply_rope(k, s.kv_heads, c.head_dim, 0, inv_freq);
  // Attention needs nothing from the other ranks: a head's scores use only its own q, k, v.
  const Matrix<double> a = attention<double>(q, k, v, s.q_heads, s.kv_heads, 0,
                                             AttentionMask::Causal);  // (n, qd)
  // Row-parallel o_proj: this rank's input features only, a partial sum of the (n, D) output.
  return linear(a, as_matrix(w.wo, D, qd));
}
//! [attention_partial]

Matrix<double> mlp_partial(const LayerShard& w, const TensorParallelShard& s,
                           const Matrix<double>& h) {
  const std::int64_t D = h.cols(), F = s.ffn;
  const Matrix<double> w_gate_up = as_matrix(w.w_gate_up, 2 * F, D);
  const Matrix<double> gate = linear(h, Matrix<double>(w_gate_up.topRows(F)));  // (n, F_r)
  const Matrix<double> up = linear(h, Matrix<double>(w_gate_up.bottomRows(F)));
  return linear(swiglu(gate, up), as_matrix(w.w_down, D, F));  // (n, D), partial
}

Matrix<double> tensor_parallel_forward(const ModelWeights& w, int world_size,
                                       std::span<const int> tokens) {
  validate(w);
  const ModelConfig& c = w.config;
  validate_tensor_parallel(c, world_size);
  require(!tokens.empty(), "tensor_parallel_forward: no tokens");
  require(static_cast<int>(tokens.size()) <= c.max_seq_len,
          "tensor_parallel_forward: more tokens than max_seq_len");
  const auto n = static_cast<Eigen::Index>(tokens.size());
  const Tensor& table = w.at("model.embed_tokens.weight");
  Matrix<double> x(n, c.hidden_size);  // (n, D)
  for (Eigen::Index i = 0; i < n; ++i) {
    const int id = tokens[static_cast<std::size_t>(i)];
    require(id >= 0 && id < c.vocab_size, "token id " + std::to_string(id) + " out of range");
    for (int j = 0; j < c.hidden_size; ++j)
      x(i, j) = table.data[static_cast<std::size_t>(id) * c.hidden_size + j];
  }
  std::vector<TensorParallelShard> shards;
  for (int r = 0; r < world_size; ++r) shards.push_back(tensor_parallel_shard(c, world_size, r));
  for (int l = 0; l < c.num_layers; ++l) {
    std::vector<LayerShard> parts;
    for (const auto& s : shards) parts.push_back(shard_layer(w, l, s));
    const Vector<double> attn_norm =
        as_vector(w.at(layer_tensor_name(l, "input_layernorm.weight")));
    const Vector<double> mlp_norm =
        as_vector(w.at(layer_tensor_name(l, "post_attention_layernorm.weight")));
    // Every rank holds the same x (replicated residual stream), so each computes the same norm.
    const Matrix<double> h1 = rms_norm(x, attn_norm, c.rms_norm_eps);
    Matrix<double> sum = Matrix<double>::Zero(n, c.hidden_size);
    for (int r = 0; r < world_size; ++r) sum += attention_partial(c, parts[r], shards[r], h1);
    x += sum;  // all-reduce #1, then the residual
    const Matrix<double> h2 = rms_norm(x, mlp_norm, c.rms_norm_eps);
    sum.setZero();
    for (int r = 0; r < world_size; ++r) sum += mlp_partial(parts[r], shards[r], h2);
    x += sum;  // all-reduce #2
  }
  const Matrix<double> h = rms_norm(x, as_vector(w.at("model.norm.weight")), c.rms_norm_eps);
  const Tensor& out = w.output_projection();
  return linear(h, as_matrix(out.data, out.rows(), out.cols()));  // (n, V)
}

}  // namespace lab::cpu
