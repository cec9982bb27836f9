// Lab 6: the naive CUDA matmul against a CPU loop in double, on odd shapes.
// ctest-labels: gpu
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "common/compare.hpp"
#include "common/error.hpp"
#include "common/random.hpp"
#include "cuda/device.hpp"
#include "lab.hpp"

namespace {

#define LAB06_REQUIRE_GPU() \
  if (!lab::cuda::query_device()) GTEST_SKIP() << "no CUDA GPU on this machine"

std::vector<float> random_values(lab::Rng& rng, std::size_t count) {
  std::vector<float> v(count);
  for (float& e : v) e = static_cast<float>(rng.normal());
  return v;
}

// y[i, o] = Σ_c x[i, c] · W[o, c] in double: the oracle the fp32 kernel is measured against.
std::vector<double> matmul_reference(const std::vector<float>& x, const std::vector<float>& w,
                                     int M, int K, int N) {
  std::vector<double> y(static_cast<std::size_t>(M) * static_cast<std::size_t>(N));
  for (int i = 0; i < M; ++i)
    for (int o = 0; o < N; ++o) {
      double acc = 0;
      for (int c = 0; c < K; ++c)
        acc += static_cast<double>(x[static_cast<std::size_t>(i) * K + c]) *
               static_cast<double>(w[static_cast<std::size_t>(o) * K + c]);
      y[static_cast<std::size_t>(i) * N + o] = acc;
    }
  return y;
}

struct Shape {
  int M, K, N;
};

TEST(Lab06, MatchesCpuLoopOnOddShapes) {
  LAB06_REQUIRE_GPU();
  lab::Rng rng(6);
  // 1x1x1; shapes that are no multiple of a warp or a block; a long reduction; N spanning several
  // blocks of threads and M many grid rows.
  for (const Shape s : {Shape{1, 1, 1}, Shape{7, 9, 13}, Shape{33, 65, 129}, Shape{3, 1000, 5},
                        Shape{130, 17, 300}, Shape{5, 257, 1031}}) {
    const auto x = random_values(rng, static_cast<std::size_t>(s.M) * s.K);
    const auto w = random_values(rng, static_cast<std::size_t>(s.N) * s.K);
    // Poison: an output the kernel forgets to write stays NaN and fails the comparison.
    std::vector<float> y(static_cast<std::size_t>(s.M) * s.N,
                         std::numeric_limits<float>::quiet_NaN());
    lab06::matmul(x.data(), w.data(), y.data(), s.M, s.K, s.N);
    const auto ref = matmul_reference(x, w, s.M, s.K, s.N);
    const std::vector<double> got(y.begin(), y.end());
    // fp32 products summed in fp32 over K terms (Appendix C): 8·√K·u(fp32).
    const auto r = lab::compare(std::span<const double>(ref), std::span<const double>(got),
                                lab::tolerance_for(lab::DType::FP32, s.K));
    EXPECT_TRUE(r.passed) << s.M << "x" << s.K << "x" << s.N << ": " << lab::summary(r);
  }
}

TEST(Lab06, EmptyShapes) {
  LAB06_REQUIRE_GPU();
  // M = 0 or N = 0: nothing to compute, nothing written.
  std::vector<float> x(6, 1.5f), w(6, -2.0f), y(6, 7.0f);
  lab06::matmul(x.data(), w.data(), y.data(), 0, 3, 2);
  lab06::matmul(x.data(), w.data(), y.data(), 2, 3, 0);
  EXPECT_EQ(y, std::vector<float>(6, 7.0f));
  // K = 0: every output is an empty sum, 0.
  lab06::matmul(x.data(), w.data(), y.data(), 2, 0, 3);
  EXPECT_EQ(y, std::vector<float>(6, 0.0f));
}

TEST(Lab06, RejectsBadSizes) {
  LAB06_REQUIRE_GPU();
  std::vector<float> x(4, 1.0f), w(4, 1.0f), y(4, 0.0f);
  EXPECT_THROW(lab06::matmul(x.data(), w.data(), y.data(), -1, 2, 2), lab::Error);
  EXPECT_THROW(lab06::matmul(x.data(), w.data(), y.data(), 2, -2, 2), lab::Error);
  EXPECT_THROW(lab06::matmul(x.data(), w.data(), y.data(), 70000, 0, 1), lab::Error);
}

}  // namespace
