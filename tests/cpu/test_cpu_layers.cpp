// Layer-level properties of the Eigen reference, each against an independent formula: RoPE's
// half-split pairing and its relative-position property, RMSNorm, the causal mask, GQA sharing,
// and the threaded decode GEMV.
#include <gtest/gtest.h>

#include <cmath>

#include "common/compare.hpp"
#include "common/error.hpp"
#include "common/random.hpp"
#include "cpu_reference/layers.hpp"

namespace {

using namespace lab::cpu;

Matrix<double> random_matrix(lab::Rng& rng, Eigen::Index rows, Eigen::Index cols) {
  Matrix<double> m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = rng.normal();
  return m;
}

TEST(CpuLayers, RopeRotatesHalfSplitPairs) {
  // One head, d = 8: only element 1 is set, so the rotation must move it to element 1 + d/2 = 5.
  Matrix<double> x = Matrix<double>::Zero(1, 8);
  x(0, 1) = 1.0;
  const auto inv_freq = rope_inverse_frequencies(8, 10000.0);
  EXPECT_DOUBLE_EQ(inv_freq[1], std::pow(10000.0, -2.0 / 8));
  apply_rope(x, 1, 8, /*first_position=*/3, inv_freq);
  const double angle = 3 * inv_freq[1];
  EXPECT_NEAR(x(0, 1), std::cos(angle), 1e-15);
  EXPECT_NEAR(x(0, 5), std::sin(angle), 1e-15);  // rotate_half(x) = (−x₂, x₁): +x₁·sin lands at 5
  EXPECT_EQ(x(0, 0), 0.0);
  EXPECT_EQ(x(0, 2), 0.0);  // not the adjacent-pair (Meta/GGUF) convention
}

TEST(CpuLayers, RopeScoresDependOnlyOnRelativePosition) {
  lab::Rng rng(1);
  const int d = 32;
  const auto inv_freq = rope_inverse_frequencies(d, 500000.0);
  const Matrix<double> q0 = random_matrix(rng, 1, d), k0 = random_matrix(rng, 1, d);
  auto score = [&](int pq, int pk) {
    Matrix<double> q = q0, k = k0;
    apply_rope(q, 1, d, pq, inv_freq);
    apply_rope(k, 1, d, pk, inv_freq);
    return q.row(0).dot(k.row(0));
  };
  EXPECT_NEAR(score(10, 3), score(107, 100), 1e-9);
  EXPECT_GT(std::abs(score(10, 3) - score(10, 4)), 1e-6);
}

TEST(CpuLayers, RmsNormMatchesTheFormula) {
  lab::Rng rng(2);
  const Matrix<double> x = random_matrix(rng, 3, 10);
  Vector<double> g(10);
  for (int i = 0; i < 10; ++i) g[i] = 1 + 0.1 * i;
  const Matrix<double> y = rms_norm(x, g, 1e-5);
  for (int r = 0; r < 3; ++r) {
    double ss = 0;
    for (int i = 0; i < 10; ++i) ss += x(r, i) * x(r, i);
    for (int i = 0; i < 10; ++i)
      EXPECT_NEAR(y(r, i), x(r, i) / std::sqrt(ss / 10 + 1e-5) * g[i], 1e-14);
  }
}

TEST(CpuLayers, CausalAttentionIgnoresLaterKeysAndGqaSharesHeads) {
  lab::Rng rng(3);
  const int H = 4, Hkv = 2, d = 8, n = 5;
  const Matrix<double> q = random_matrix(rng, n, H * d);
  Matrix<double> k = random_matrix(rng, n, Hkv * d), v = random_matrix(rng, n, Hkv * d);
  const Matrix<double> a = attention<double>(q, k, v, H, Hkv, 0, AttentionMask::Causal);
  // Row 0 attends to key 0 only: its output is v_0 of the shared head, whatever the scores.
  for (int h = 0; h < H; ++h)
    for (int i = 0; i < d; ++i) EXPECT_NEAR(a(0, h * d + i), v(0, (h / 2) * d + i), 1e-14);
  // Changing the last key changes only the last row.
  k.row(n - 1) *= 3.0;
  const Matrix<double> b = attention<double>(q, k, v, H, Hkv, 0, AttentionMask::Causal);
  EXPECT_EQ(a.topRows(n - 1), b.topRows(n - 1));
  EXPECT_GT((a.row(n - 1) - b.row(n - 1)).norm(), 1e-6);
  // Bidirectional: the first row now sees every key.
  const Matrix<double> c = attention<double>(q, k, v, H, Hkv, 0, AttentionMask::Bidirectional);
  EXPECT_GT((c.row(0) - b.row(0)).norm(), 1e-6);
}

TEST(CpuLayers, ThreadedDecodeGemvMatchesGemm) {
  lab::Rng rng(4);
  // 1031 output rows (prime: uneven split) × 300 inputs > 2^18 weights, so the threaded path runs.
  Matrix<float> w(1031, 300), x(1, 300);
  for (Eigen::Index i = 0; i < w.size(); ++i) w.data()[i] = static_cast<float>(rng.normal());
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(rng.normal());
  set_num_threads(3);
  const Matrix<float> y = linear(x, w);
  set_num_threads(1);
  const Matrix<float> ref = (x.cast<double>() * w.cast<double>().transpose()).cast<float>();
  const auto r =
      lab::compare(std::span<const float>(ref.data(), 1031), std::span<const float>(y.data(), 1031),
                   lab::tolerance_for(lab::DType::FP32, 300));
  EXPECT_TRUE(r.passed) << lab::summary(r);
}

TEST(CpuLayers, MaskNames) {
  EXPECT_EQ(parse_attention_mask("causal"), AttentionMask::Causal);
  EXPECT_EQ(to_string(AttentionMask::Bidirectional), "bidirectional");
  EXPECT_THROW(parse_attention_mask("sideways"), lab::Error);
}

}  // namespace
