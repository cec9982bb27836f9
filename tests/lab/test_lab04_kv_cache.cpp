// Lab 4: decode attention over your cache equals the last row of full causal attention.
#include <gtest/gtest.h>

#include "common/compare.hpp"
#include "common/error.hpp"
#include "common/random.hpp"
#include "cpu_reference/layers.hpp"
#include "lab.hpp"

namespace {

using lab::cpu::Matrix;

TEST(Lab04, DecodeStepsMatchFullCausalAttention) {
  lab::Rng rng(9);
  struct Shape {
    int H, Hkv, d, n;
  };
  for (const Shape s : {Shape{4, 4, 16, 12}, Shape{6, 2, 32, 20}, Shape{9, 3, 64, 9}}) {
    Matrix<float> q(s.n, s.H * s.d), k(s.n, s.Hkv * s.d), v(s.n, s.Hkv * s.d);
    for (auto* m : {&q, &k, &v})
      for (Eigen::Index i = 0; i < m->size(); ++i) m->data()[i] = static_cast<float>(rng.normal());
    const Matrix<float> ref =
        lab::cpu::attention<float>(q, k, v, s.H, s.Hkv, 0, lab::cpu::AttentionMask::Causal);
    lab04::LayerCache cache(s.n, s.Hkv * s.d);
    const auto width = static_cast<std::size_t>(s.Hkv * s.d),
               qwidth = static_cast<std::size_t>(s.H * s.d);
    for (int t = 0; t < s.n; ++t) {
      lab04::append(cache, {k.row(t).data(), width}, {v.row(t).data(), width});
      ASSERT_EQ(cache.length, t + 1);
      const auto got = lab04::decode_attention({q.row(t).data(), qwidth}, cache, s.H, s.Hkv, s.d);
      // Length-d dot products, then a sum over t + 1 values.
      const auto r = lab::compare(std::span<const float>(ref.row(t).data(), qwidth),
                                  std::span<const float>(got),
                                  lab::tolerance_for(lab::DType::FP32, std::max(s.d, s.n), 2));
      EXPECT_TRUE(r.passed) << "H=" << s.H << " Hkv=" << s.Hkv << " step " << t << ": "
                            << lab::summary(r);
    }
  }
}

TEST(Lab04, AppendWritesTheRowAndRefusesAFullCache) {
  lab04::LayerCache cache(2, 3);
  const std::vector<float> k1 = {1, 2, 3}, v1 = {4, 5, 6}, k2 = {7, 8, 9}, v2 = {10, 11, 12};
  lab04::append(cache, k1, v1);
  lab04::append(cache, k2, v2);
  EXPECT_EQ(cache.keys, (std::vector<float>{1, 2, 3, 7, 8, 9}));
  EXPECT_EQ(cache.values, (std::vector<float>{4, 5, 6, 10, 11, 12}));
  EXPECT_THROW(lab04::append(cache, k1, v1), lab::Error);
  EXPECT_EQ(cache.length, 2);
}

}  // namespace
