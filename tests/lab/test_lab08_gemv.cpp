// Lab 8: the bf16 decode GEMV against a CPU loop in double, and the KV-cache append, bit for bit.
// ctest-labels: gpu
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <vector>

#include "common/compare.hpp"
#include "common/error.hpp"
#include "common/random.hpp"
#include "cuda/device.hpp"
#include "lab.hpp"

namespace {

#define LAB08_REQUIRE_GPU() \
  if (!lab::cuda::query_device()) GTEST_SKIP() << "no CUDA GPU on this machine"

std::vector<float> random_values(lab::Rng& rng, std::size_t count) {
  std::vector<float> v(count);
  for (float& e : v) e = static_cast<float>(rng.normal());
  return v;
}

std::vector<std::uint16_t> random_bf16(lab::Rng& rng, std::size_t count) {
  std::vector<std::uint16_t> v(count);
  for (auto& e : v) e = lab08::to_bf16(static_cast<float>(rng.normal()));
  return v;
}

// y[r] = Σ_c W[r, c] x[c] in double, from the bf16 weights exactly as stored.
std::vector<double> gemv_reference(const std::vector<std::uint16_t>& w, const std::vector<float>& x,
                                   int rows, int cols) {
  std::vector<double> y(static_cast<std::size_t>(rows));
  for (int r = 0; r < rows; ++r) {
    double acc = 0;
    for (int c = 0; c < cols; ++c)
      acc += static_cast<double>(lab08::from_bf16(w[static_cast<std::size_t>(r) * cols + c])) *
             static_cast<double>(x[static_cast<std::size_t>(c)]);
    y[static_cast<std::size_t>(r)] = acc;
  }
  return y;
}

struct Shape {
  int rows, cols;
};

TEST(Lab08, GemvMatchesCpuLoopOnOddShapes) {
  LAB08_REQUIRE_GPU();
  lab::Rng rng(8);
  // 1x1; shapes that are no multiple of a warp or of the rows a block holds; a row longer than
  // 32 × 128 (many loop trips per lane); more rows than one wave of blocks.
  for (const Shape s : {Shape{1, 1}, Shape{7, 9}, Shape{13, 33}, Shape{33, 65}, Shape{300, 129},
                        Shape{5, 4097}, Shape{1031, 1000}}) {
    const auto w = random_bf16(rng, static_cast<std::size_t>(s.rows) * s.cols);
    const auto x = random_values(rng, static_cast<std::size_t>(s.cols));
    std::vector<float> y(static_cast<std::size_t>(s.rows), std::numeric_limits<float>::quiet_NaN());
    lab08::gemv(w.data(), x.data(), y.data(), s.rows, s.cols);
    const auto ref = gemv_reference(w, x, s.rows, s.cols);
    const std::vector<double> got(y.begin(), y.end());
    // The weights are exact bf16 in both, so only the fp32 arithmetic differs: 8·√cols·u(fp32).
    // Accumulating in bf16 instead would miss this by a factor of ~65000 / 8.
    const auto r = lab::compare(std::span<const double>(ref), std::span<const double>(got),
                                lab::tolerance_for(lab::DType::FP32, s.cols));
    EXPECT_TRUE(r.passed) << s.rows << "x" << s.cols << ": " << lab::summary(r);
  }
}

TEST(Lab08, GemvAccumulatesInFp32) {
  LAB08_REQUIRE_GPU();
  // 20000 products 1 · 1: exact in fp32 (integers below 2^24), while a bf16 running sum stops
  // growing at 256 (8 significant bits: 256 + 1 rounds back to 256).
  const int rows = 3, cols = 20000;
  const std::vector<std::uint16_t> w(static_cast<std::size_t>(rows) * cols, lab08::to_bf16(1.0f));
  const std::vector<float> x(cols, 1.0f);
  std::vector<float> y(rows, 0.0f);
  lab08::gemv(w.data(), x.data(), y.data(), rows, cols);
  for (float v : y) EXPECT_EQ(v, 20000.0f);
}

TEST(Lab08, GemvEdgeCasesAndErrors) {
  LAB08_REQUIRE_GPU();
  const std::vector<std::uint16_t> w(6, lab08::to_bf16(0.5f));
  const std::vector<float> x(3, 2.0f);
  std::vector<float> y(3, 7.0f);
  lab08::gemv(w.data(), x.data(), y.data(), 0, 2);  // no rows: nothing written
  EXPECT_EQ(y, std::vector<float>(3, 7.0f));
  lab08::gemv(w.data(), x.data(), y.data(), 3, 0);  // empty rows: empty sums
  EXPECT_EQ(y, std::vector<float>(3, 0.0f));
  EXPECT_THROW(lab08::gemv(w.data(), x.data(), y.data(), -1, 2), lab::Error);
  EXPECT_THROW(lab08::gemv(w.data(), x.data(), y.data(), 2, -3), lab::Error);
}

// Appends like a decoder does (a prefill of several rows, then one row per decode step) and checks
// every row of both caches, bit for bit: written rows are the bf16 rounding of the input, the rest
// keep their earlier contents.
TEST(Lab08, KvAppendWritesRoundedRowsAndNothingElse) {
  LAB08_REQUIRE_GPU();
  lab::Rng rng(88);
  struct Case {
    int capacity, kv_dim, prefill;
  };
  for (const Case cs : {Case{1, 1, 1}, Case{13, 9, 5}, Case{7, 300, 3}}) {
    const auto cap = static_cast<std::size_t>(cs.capacity),
               dim = static_cast<std::size_t>(cs.kv_dim);
    // Rows not yet written hold old bits, which must survive.
    auto k_cache = random_bf16(rng, cap * dim), v_cache = random_bf16(rng, cap * dim);
    auto k_expected = k_cache, v_expected = v_cache;
    int pos = 0;
    while (pos < cs.capacity) {
      const int n = pos == 0 ? cs.prefill : 1;
      const auto k_new = random_values(rng, static_cast<std::size_t>(n) * dim);
      const auto v_new = random_values(rng, static_cast<std::size_t>(n) * dim);
      lab08::kv_append(k_new.data(), v_new.data(), k_cache.data(), v_cache.data(), n, cs.kv_dim,
                       pos, cs.capacity);
      for (std::size_t i = 0; i < k_new.size(); ++i) {
        k_expected[static_cast<std::size_t>(pos) * dim + i] = lab08::to_bf16(k_new[i]);
        v_expected[static_cast<std::size_t>(pos) * dim + i] = lab08::to_bf16(v_new[i]);
      }
      pos += n;
      ASSERT_EQ(k_cache, k_expected)
          << "capacity " << cs.capacity << " kv_dim " << cs.kv_dim << ", after rows up to " << pos;
      ASSERT_EQ(v_cache, v_expected)
          << "capacity " << cs.capacity << " kv_dim " << cs.kv_dim << ", after rows up to " << pos;
    }
  }
}

TEST(Lab08, KvAppendRefusesRowsPastTheCapacity) {
  LAB08_REQUIRE_GPU();
  const std::vector<float> fresh(8, 1.0f);
  std::vector<std::uint16_t> k(8, 0x3F80), v(8, 0x3F80);  // 4 rows of 2, all 1.0
  EXPECT_THROW(lab08::kv_append(fresh.data(), fresh.data(), k.data(), v.data(), 2, 2, 3, 4),
               lab::Error);
  EXPECT_THROW(lab08::kv_append(fresh.data(), fresh.data(), k.data(), v.data(), 1, 2, -1, 4),
               lab::Error);
  EXPECT_EQ(k, std::vector<std::uint16_t>(8, 0x3F80));  // refused before anything was written
}

}  // namespace
