// Lab 2 against the Eigen reference: RMSNorm and one head of causal attention.
#include <gtest/gtest.h>

#include "common/compare.hpp"
#include "common/random.hpp"
#include "cpu_reference/layers.hpp"
#include "lab.hpp"

namespace {

using lab::cpu::Matrix;

Matrix<float> random_matrix(lab::Rng& rng, int rows, int cols, double scale = 1.0) {
  Matrix<float> m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i)
    m.data()[i] = static_cast<float>(scale * rng.normal());
  return m;
}

std::span<const float> span_of(const Matrix<float>& m) {
  return {m.data(), static_cast<std::size_t>(m.size())};
}

TEST(Lab02, RmsNormMatchesReference) {
  lab::Rng rng(1);
  for (int D : {8, 64, 576}) {
    const Matrix<float> x = random_matrix(rng, 1, D);
    lab::cpu::Vector<float> g(D);
    for (int i = 0; i < D; ++i) g[i] = static_cast<float>(1 + 0.1 * rng.normal());
    const Matrix<float> ref = lab::cpu::rms_norm(x, g, 1e-5);
    const auto got = lab02::rms_norm(span_of(x), {g.data(), static_cast<std::size_t>(D)}, 1e-5f);
    // One reduction of length D in fp32.
    const auto r = lab::compare(span_of(ref), std::span<const float>(got),
                                lab::tolerance_for(lab::DType::FP32, D));
    EXPECT_TRUE(r.passed) << "D=" << D << ": " << lab::summary(r);
  }
}

TEST(Lab02, CausalAttentionMatchesReference) {
  lab::Rng rng(2);
  for (auto [n, d] : {std::pair{1, 8}, std::pair{7, 16}, std::pair{33, 64}}) {
    const Matrix<float> q = random_matrix(rng, n, d), k = random_matrix(rng, n, d),
                        v = random_matrix(rng, n, d);
    const Matrix<float> ref =
        lab::cpu::attention<float>(q, k, v, 1, 1, 0, lab::cpu::AttentionMask::Causal);
    const auto got = lab02::causal_attention(span_of(q), span_of(k), span_of(v), n, d);
    // Dot products of length d, then sums over up to n keys.
    const auto r = lab::compare(span_of(ref), std::span<const float>(got),
                                lab::tolerance_for(lab::DType::FP32, std::max(n, d), 2));
    EXPECT_TRUE(r.passed) << "n=" << n << " d=" << d << ": " << lab::summary(r);
  }
}

TEST(Lab02, FirstRowSeesOnlyTheFirstKeyAndLargeScoresDoNotOverflow) {
  lab::Rng rng(3);
  const int n = 4, d = 8;
  const Matrix<float> q = random_matrix(rng, n, d, 100.0), k = random_matrix(rng, n, d, 100.0);
  const Matrix<float> v = random_matrix(rng, n, d);
  const auto got = lab02::causal_attention(span_of(q), span_of(k), span_of(v), n, d);
  for (int c = 0; c < d; ++c) EXPECT_NEAR(got[static_cast<std::size_t>(c)], v(0, c), 1e-6);
  for (float x : got) EXPECT_TRUE(std::isfinite(x));
}

}  // namespace
