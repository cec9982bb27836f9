// Chapter 12's sharding arithmetic: split a block's weights over N ranks the Megatron-LM way
// (column-parallel q, k, v, gate, up; row-parallel o, down), add the ranks' partial outputs, and
// get the unsplit block back. Checked in fp64 against the CPU layers and the chapter 2 forward.
#include <gtest/gtest.h>

#include <cmath>

#include "common/compare.hpp"
#include "common/error.hpp"
#include "common/random.hpp"
#include "common/tensor_parallel.hpp"
#include "common/weights.hpp"
#include "cpu_reference/random_config.hpp"
#include "cpu_reference/tensor_parallel.hpp"
#include "cpu_reference/transformer.hpp"

using namespace lab;
using cpu::Matrix;

namespace {

// fp64 accumulation in a different order: the typical relative error of a length-n sum is
// ~√n·u (u = 2⁻⁵³), compounded over `depth` stages; 8 is tolerance_for's safety factor.
Tolerance fp64_tolerance(std::int64_t n, int depth) {
  const double u = std::ldexp(1.0, -53);
  return {8.0 * std::sqrt(static_cast<double>(n)) * u * depth,
          "fp64 sums reordered: 8 * sqrt(n) * 2^-53 * depth"};
}

// Configurations that split over 8 ranks, with MHA, GQA with Hkv ≥ 8 and GQA with Hkv < N
// (replicated KV heads), odd vocabularies, tied and untied embeddings.
std::vector<ModelConfig> divisible_configs() {
  std::vector<ModelConfig> out;
  auto make = [&](int heads, int kv_heads, int head_dim, int ffn, int vocab, bool tied) {
    ModelConfig c = preset("tiny");
    c.name = "H" + std::to_string(heads) + "/Hkv" + std::to_string(kv_heads);
    c.num_heads = heads, c.num_kv_heads = kv_heads, c.head_dim = head_dim;
    c.hidden_size = heads * head_dim, c.intermediate_size = ffn, c.vocab_size = vocab;
    c.tie_word_embeddings = tied, c.num_layers = 2, c.bos_token_id = c.eos_token_id = -1;
    validate(c);
    out.push_back(c);
  };
  make(8, 8, 8, 8 * 23, 131, false);   // MHA
  make(16, 8, 8, 8 * 30, 97, true);    // GQA, Hkv = 8: no replication up to N = 8
  make(8, 2, 16, 8 * 37, 203, false);  // GQA, Hkv = 2: replicated at N = 4 and 8
  make(8, 1, 16, 8 * 19, 101, false);  // MQA: one KV head on every rank
  return out;
}

std::vector<int> random_tokens(Rng& rng, int n, int vocab) {
  std::vector<int> t(static_cast<std::size_t>(n));
  for (int& x : t) x = static_cast<int>(rng.below(static_cast<std::uint64_t>(vocab)));
  return t;
}

Matrix<double> random_matrix(Rng& rng, int rows, int cols) {
  Matrix<double> m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = rng.uniform(-1.0, 1.0);
  return m;
}

Matrix<double> weight(const ModelWeights& w, int layer, const char* suffix) {
  const Tensor& t = w.at(layer_tensor_name(layer, suffix));
  Matrix<double> m(t.rows(), t.cols());
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = t.data[static_cast<std::size_t>(i)];
  return m;
}

std::vector<double> flat(const Matrix<double>& m) {
  return {m.data(), m.data() + m.size()};
}

// The split rule, restated independently of the code under test.
bool splits(const ModelConfig& c, int n) {
  if (c.num_heads % n != 0 || c.intermediate_size % n != 0) return false;
  return c.num_kv_heads >= n ? c.num_kv_heads % n == 0 : n % c.num_kv_heads == 0;
}

}  // namespace

TEST(TensorParallelSharding, EveryWeightLandsOnExactlyOneRankOrIsReplicatedWhole) {
  for (const ModelConfig& c : divisible_configs()) {
    const ModelWeights w = random_weights(c, 7);
    const int d = c.head_dim, D = c.hidden_size;
    for (int n : {1, 2, 4, 8}) {
      SCOPED_TRACE(c.name + " N=" + std::to_string(n));
      std::vector<float> q, o_by_rank, gate, up, down_by_rank;
      std::vector<int> kv_copies(static_cast<std::size_t>(c.num_kv_heads), 0);
      const Tensor& k_full = w.at(layer_tensor_name(1, "self_attn.k_proj.weight"));
      for (int r = 0; r < n; ++r) {
        const TensorParallelShard s = tensor_parallel_shard(c, n, r);
        const LayerShard part = shard_layer(w, 1, s);
        const std::size_t qd = static_cast<std::size_t>(s.q_dim(d)), kvd = s.kv_dim(d);
        ASSERT_EQ(part.w_qkv.size(), (qd + 2 * kvd) * D);
        q.insert(q.end(), part.w_qkv.begin(), part.w_qkv.begin() + static_cast<long>(qd * D));
        // The K rows must be the rows of the KV heads this rank's query heads read.
        for (int h = 0; h < s.q_heads; ++h)
          EXPECT_EQ((s.first_q_head + h) / c.group_size() - s.first_kv_head,
                    h / (s.q_heads / s.kv_heads));
        const auto k_rows = slice_rows(k_full, std::int64_t{s.first_kv_head} * d, kvd);
        EXPECT_TRUE(std::equal(k_rows.begin(), k_rows.end(),
                               part.w_qkv.begin() + static_cast<long>(qd * D)));
        for (int h = 0; h < s.kv_heads; ++h)
          ++kv_copies[static_cast<std::size_t>(s.first_kv_head + h)];
        o_by_rank.insert(o_by_rank.end(), part.wo.begin(), part.wo.end());
        const auto half = part.w_gate_up.begin() + static_cast<long>(s.ffn) * D;
        gate.insert(gate.end(), part.w_gate_up.begin(), half);
        up.insert(up.end(), half, part.w_gate_up.end());
        down_by_rank.insert(down_by_rank.end(), part.w_down.begin(), part.w_down.end());
      }
      // Column-parallel slices, stacked in rank order, are the whole matrices.
      EXPECT_EQ(q, w.at(layer_tensor_name(1, "self_attn.q_proj.weight")).data);
      EXPECT_EQ(gate, w.at(layer_tensor_name(1, "mlp.gate_proj.weight")).data);
      EXPECT_EQ(up, w.at(layer_tensor_name(1, "mlp.up_proj.weight")).data);
      // Row-parallel slices are blocks of columns: rank r's block is columns [r·k, (r+1)·k).
      const Tensor& o = w.at(layer_tensor_name(1, "self_attn.o_proj.weight"));
      const std::int64_t ko = o.cols() / n;
      for (int r = 0; r < n; ++r)
        EXPECT_EQ(std::vector<float>(o_by_rank.begin() + r * D * ko,
                                     o_by_rank.begin() + (r + 1) * D * ko),
                  slice_columns(o, r * ko, ko));
      EXPECT_EQ(down_by_rank.size(),
                w.at(layer_tensor_name(1, "mlp.down_proj.weight")).data.size());
      // Every KV head lives somewhere; replicated ones on N / Hkv ranks each.
      for (int copies : kv_copies) EXPECT_EQ(copies, std::max(1, n / c.num_kv_heads));
    }
  }
}

TEST(TensorParallelSharding, PartialSumsOfBothHalvesEqualTheUnsplitBlock) {
  Rng rng(12);
  for (const ModelConfig& c : divisible_configs()) {
    const ModelWeights w = random_weights(c, 11);
    const int n_tokens = 9;
    const Matrix<double> h = random_matrix(rng, n_tokens, c.hidden_size);  // a normed input
    // The unsplit block, straight from the full HF matrices and the CPU layers.
    const auto inv_freq = cpu::rope_inverse_frequencies(c.head_dim, c.rope_theta);
    Matrix<double> q = cpu::linear(h, weight(w, 0, "self_attn.q_proj.weight"));
    Matrix<double> k = cpu::linear(h, weight(w, 0, "self_attn.k_proj.weight"));
    const Matrix<double> v = cpu::linear(h, weight(w, 0, "self_attn.v_proj.weight"));
    cpu::apply_rope(q, c.num_heads, c.head_dim, 0, inv_freq);
    cpu::apply_rope(k, c.num_kv_heads, c.head_dim, 0, inv_freq);
    const Matrix<double> attention_out = cpu::linear(
        cpu::attention<double>(q, k, v, c.num_heads, c.num_kv_heads, 0, cpu::AttentionMask::Causal),
        weight(w, 0, "self_attn.o_proj.weight"));
    const Matrix<double> mlp_out =
        cpu::linear(cpu::swiglu(cpu::linear(h, weight(w, 0, "mlp.gate_proj.weight")),
                                cpu::linear(h, weight(w, 0, "mlp.up_proj.weight"))),
                    weight(w, 0, "mlp.down_proj.weight"));
    for (int n : {1, 2, 4, 8}) {
      SCOPED_TRACE(c.name + " N=" + std::to_string(n));
      Matrix<double> attention_sum = Matrix<double>::Zero(n_tokens, c.hidden_size);
      Matrix<double> mlp_sum = attention_sum;
      for (int r = 0; r < n; ++r) {
        const TensorParallelShard s = tensor_parallel_shard(c, n, r);
        const LayerShard part = shard_layer(w, 0, s);
        attention_sum += cpu::attention_partial(c, part, s, h);
        mlp_sum += cpu::mlp_partial(part, s, h);
      }
      const auto ra = compare(flat(attention_out), flat(attention_sum),
                              fp64_tolerance(std::max(c.hidden_size, n_tokens), 2));
      EXPECT_TRUE(ra.passed) << "attention: " << summary(ra);
      const auto rm = compare(flat(mlp_out), flat(mlp_sum),
                              fp64_tolerance(std::max(c.hidden_size, c.intermediate_size), 2));
      EXPECT_TRUE(rm.passed) << "mlp: " << summary(rm);
      // A single rank's partial is not the answer (the test would pass if nothing were split).
      if (n > 1) {
        const TensorParallelShard s0 = tensor_parallel_shard(c, n, 0);
        const auto alone =
            compare(flat(mlp_out), flat(cpu::mlp_partial(shard_layer(w, 0, s0), s0, h)),
                    fp64_tolerance(c.intermediate_size, 2));
        EXPECT_FALSE(alone.passed);
      }
    }
  }
}

TEST(TensorParallelSharding, ShardedForwardEqualsTheChapter2Forward) {
  Rng rng(3);
  std::vector<ModelWeights> models;
  models.push_back(random_weights(preset("tiny"), 1234));
  for (const ModelConfig& c : divisible_configs()) models.push_back(random_weights(c, 5));
  for (int i = 0; i < 4; ++i)
    models.push_back(random_weights(cpu::random_config(rng, 256, 64), 9 + i));
  int checked_beyond_one = 0;
  for (const ModelWeights& w : models) {
    const ModelConfig& c = w.config;
    const auto tokens = random_tokens(rng, 17, c.vocab_size);
    const cpu::Transformer<double> reference(w);
    const std::vector<double> ref = flat(reference.forward(tokens));
    for (int n : {1, 2, 4, 8}) {
      SCOPED_TRACE(c.name + " N=" + std::to_string(n));
      if (!splits(c, n)) {
        EXPECT_THROW(cpu::tensor_parallel_forward(w, n, tokens), Error);
        continue;
      }
      const auto got = flat(cpu::tensor_parallel_forward(w, n, tokens));
      const auto r =
          compare(ref, got,
                  fp64_tolerance(std::max({c.hidden_size, c.intermediate_size, c.vocab_size}),
                                 c.num_layers + 1),
                  static_cast<std::size_t>(c.vocab_size));
      EXPECT_TRUE(r.passed) << summary(r);
      EXPECT_EQ(r.argmax_agreement, 1.0);
      if (n > 1) ++checked_beyond_one;
    }
  }
  EXPECT_GE(checked_beyond_one, 12);  // the divisible configs alone give 4 × 3
}

TEST(TensorParallelSharding, ShapesThatDoNotSplitGiveAClearError) {
  auto expect_error = [](const ModelConfig& c, int n, const std::string& fragment) {
    try {
      validate_tensor_parallel(c, n);
      ADD_FAILURE() << c.name << " N=" << n << ": no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  const ModelConfig tiny = preset("tiny");  // H = 4, Hkv = 2, F = 176
  expect_error(tiny, 8, "num_heads (4) does not split over 8 ranks");
  expect_error(tiny, 3, "num_heads (4) does not split over 3 ranks");
  expect_error(tiny, 0, "at least 1 rank");
  ModelConfig c = tiny;
  c.intermediate_size = 178;  // 178 / 4 is not whole
  expect_error(c, 4, "intermediate_size (178) does not split over 4 ranks");
  c = tiny;
  c.num_heads = 12, c.num_kv_heads = 6, c.head_dim = 4, c.hidden_size = 48;
  expect_error(c, 4, "num_kv_heads (6) does not split over 4 ranks");  // 6 ≥ 4, 6 % 4 ≠ 0
  c.num_kv_heads = 4;
  c.intermediate_size = 178;  // 12 heads split over 3, 178 FFN columns do not
  expect_error(c, 3, "intermediate_size (178)");
  c.intermediate_size = 180;
  expect_error(c, 6, "num_kv_heads (4) is smaller than the 6 ranks and does not divide it");
  EXPECT_THROW(tensor_parallel_shard(tiny, 2, 2), Error);  // rank out of range
  EXPECT_THROW(tensor_parallel_shard(tiny, 2, -1), Error);
  EXPECT_NO_THROW(validate_tensor_parallel(tiny, 4));  // Hkv = 2 replicated on 2 ranks each
  EXPECT_TRUE(tensor_parallel_shard(tiny, 4, 3).kv_replicated);
  EXPECT_EQ(describe(tensor_parallel_shard(preset("llama2-70b"), 4, 1)),
            "rank 1 of 4: q heads 16..31, kv heads 2..3, FFN columns 7168..14335");
  EXPECT_EQ(tensor_parallel_shard(tiny, 4, 3).first_kv_head, 1);
  EXPECT_EQ(describe(tensor_parallel_shard(tiny, 4, 3)),
            "rank 3 of 4: q head 3, kv head 1 (replicated), FFN columns 132..175");
}
