// The comparison helper, the timing helper and the formatting helpers.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "common/compare.hpp"
#include "common/error.hpp"
#include "common/format.hpp"
#include "common/quant.hpp"
#include "common/random.hpp"
#include "common/timing.hpp"

TEST(Compare, ExactMatchPasses) {
  std::vector<float> a{1, 2, 3, 4};
  const auto r = lab::compare(a, a, {1e-6, "test"}, 2);
  EXPECT_TRUE(r.passed);
  EXPECT_EQ(r.rel_l2, 0.0);
  EXPECT_EQ(r.first_mismatch, -1);
  EXPECT_EQ(r.argmax_agreement, 1.0);
  EXPECT_EQ(r.rows, 2u);
}

TEST(Compare, MeasuresRelativeL2AndMaxAbs) {
  std::vector<float> ref{3, 4}, got{3, 4.5f};  // |Δ| = 0.5, ‖ref‖ = 5
  const auto r = lab::compare(ref, got, {0.2, "test"});
  EXPECT_NEAR(r.rel_l2, 0.1, 1e-7);
  EXPECT_NEAR(r.max_abs, 0.5, 1e-7);
  EXPECT_EQ(r.max_abs_index, 1u);
  EXPECT_NEAR(r.share_of_tolerance, 0.5, 1e-6);
  EXPECT_TRUE(r.passed);
  EXPECT_FALSE(lab::compare(ref, got, {0.05, "test"}).passed);
}

TEST(Compare, ArgmaxAgreementAndFirstMismatch) {
  std::vector<float> ref{0, 1, 2, /**/ 5, 1, 0, /**/ 0, 0, 9};
  std::vector<float> got{0, 1, 2, /**/ 1, 5, 0, /**/ 0, 0, 9};
  const auto r = lab::compare(ref, got, {1e-3, "test"}, 3);
  EXPECT_NEAR(r.argmax_agreement, 2.0 / 3.0, 1e-12);
  EXPECT_EQ(r.first_argmax_mismatch, 1);
  EXPECT_EQ(r.first_mismatch, 3);
  EXPECT_FALSE(r.passed);
}

TEST(Compare, NanNeverPasses) {
  std::vector<float> ref{1, 2}, got{1, std::numeric_limits<float>::quiet_NaN()};
  const auto r = lab::compare(ref, got, {1e9, "huge"});
  EXPECT_TRUE(r.non_finite);
  EXPECT_FALSE(r.passed);
  EXPECT_NE(lab::summary(r).find("FAIL"), std::string::npos);
}

TEST(Compare, SizeMismatchIsAnError) {
  std::vector<float> a{1, 2}, b{1};
  EXPECT_THROW(lab::compare(a, b, {1e-3, "t"}), lab::Error);
}

TEST(Compare, ToleranceComesFromDtypeAndLength) {
  const auto fp32 = lab::tolerance_for(lab::DType::FP32, 576);
  const auto bf16 = lab::tolerance_for(lab::DType::BF16, 576);
  EXPECT_NEAR(fp32.rel_l2, 8 * 24 * 0x1p-24, 1e-15);
  EXPECT_NEAR(bf16.rel_l2 / fp32.rel_l2, 65536.0, 1e-6);  // 2^-8 / 2^-24
  EXPECT_NE(fp32.reason.find("sqrt(n=576)"), std::string::npos);
}

TEST(Compare, Fp32DotProductsLandInsideTheirTolerance) {
  // The tolerance's premise: an fp32 dot product of length n errs by about √n·u relative to fp64.
  lab::Rng rng(3);
  const int n = 4096, rows = 64;
  std::vector<double> ref(rows);
  std::vector<double> got(rows);
  for (int r = 0; r < rows; ++r) {
    double exact = 0;
    float single = 0;
    for (int i = 0; i < n; ++i) {
      const float a = static_cast<float>(rng.normal()), b = static_cast<float>(rng.normal());
      exact += static_cast<double>(a) * b;
      single += a * b;
    }
    ref[static_cast<std::size_t>(r)] = exact;
    got[static_cast<std::size_t>(r)] = single;
  }
  EXPECT_TRUE(lab::compare(std::span<const double>(ref), std::span<const double>(got),
                           lab::tolerance_for(lab::DType::FP32, n))
                  .passed);
}

TEST(Compare, Bf16StorageErrorDoesNotGrowWithLength) {
  // storage_tolerance()'s premise: rounding both operands to bf16 once and accumulating in fp32
  // errs by ~u relative to the exact sum, whatever the length (accumulating in bf16 would grow as
  // √n·u). Measured at n = 64 and n = 16384: both inside the bound, and the long one not √256 =
  // 16x worse (a random walk of independent roundings, as in the short one).
  lab::Rng rng(4);
  auto rel_error = [&](int n) {
    const int rows = 64;
    std::vector<double> ref(rows), got(rows);
    for (int r = 0; r < rows; ++r) {
      double exact = 0;
      float stored = 0;
      for (int i = 0; i < n; ++i) {
        const float a = static_cast<float>(rng.normal()), b = static_cast<float>(rng.normal());
        exact += static_cast<double>(a) * b;
        stored += lab::bf16_to_fp32(lab::fp32_to_bf16(a)) * lab::bf16_to_fp32(lab::fp32_to_bf16(b));
      }
      ref[static_cast<std::size_t>(r)] = exact;
      got[static_cast<std::size_t>(r)] = stored;
    }
    const auto result = lab::compare(std::span<const double>(ref), std::span<const double>(got),
                                     lab::storage_tolerance(lab::DType::BF16, 1));
    EXPECT_TRUE(result.passed) << "n = " << n << ": " << lab::summary(result);
    return result.rel_l2;
  };
  const double short_error = rel_error(64), long_error = rel_error(16384);
  EXPECT_LT(long_error, 3 * short_error);
  EXPECT_GT(long_error, 0.1 * 0x1p-8);  // the roundings really happened
  const auto t = lab::storage_tolerance(lab::DType::BF16, 4);
  EXPECT_NEAR(t.rel_l2, 8 * 0x1p-8 * 2, 1e-12);
  EXPECT_NE(t.reason.find("sqrt(depth 4)"), std::string::npos);
}

TEST(Compare, ArgmaxFlipsAreSplitIntoNearTiesAndDecisiveRows) {
  const std::size_t V = 1000;
  lab::Rng rng(5);
  std::vector<float> ref(3 * V), got(3 * V);
  for (std::size_t i = 0; i < ref.size(); ++i) {
    ref[i] = static_cast<float>(rng.normal());
    got[i] = ref[i] + static_cast<float>(0.01 * rng.normal());  // rounding-like noise, σ = 0.01
  }
  // Row 0: a clear winner (gap 2, far above 4·√2·σ ≈ 0.06): decisive, agrees.
  ref[7] = got[7] = 10.0f;
  ref[8] = got[8] = 8.0f;
  // Row 1: a near-tie (gap 0.001) that the noise flips: a flip, not decisive.
  ref[V + 3] = 10.0f;
  ref[V + 4] = 9.999f;
  got[V + 3] = 10.0f;
  got[V + 4] = 10.004f;
  // Row 2: a clear winner flipped by one large error: a decisive flip (a bug, not rounding).
  ref[2 * V + 1] = got[2 * V + 1] = 10.0f;
  ref[2 * V + 2] = 8.0f;
  got[2 * V + 2] = 11.0f;
  const auto t = lab::argmax_ties(ref, got, V);
  EXPECT_EQ(t.rows, 3u);
  EXPECT_EQ(t.flips, 2u);
  EXPECT_EQ(t.decisive_rows, 2u);
  EXPECT_EQ(t.decisive_flips, 1u);
  EXPECT_EQ(t.first_decisive_flip, 2);
  EXPECT_DOUBLE_EQ(t.decisive_agreement(), 0.5);
  EXPECT_NE(lab::summary(t).find("2 flips, 1 of them"), std::string::npos);
}

TEST(Timing, MedianAndPercentiles) {
  const auto s = lab::summarize({5, 1, 4, 2, 3});
  EXPECT_EQ(s.median, 3);
  EXPECT_EQ(s.min, 1);
  EXPECT_EQ(s.max, 5);
  EXPECT_EQ(s.p10, 1);
  EXPECT_EQ(s.p90, 5);
  EXPECT_EQ(lab::summarize({1, 2, 3, 4}).median, 2.5);
  EXPECT_THROW(lab::summarize({}), lab::Error);
}

TEST(Timing, TimesWhatItRuns) {
  int calls = 0;
  const auto s = lab::time_function(
      [&] {
        ++calls;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      },
      2, 5);
  EXPECT_EQ(calls, 7);
  EXPECT_EQ(s.seconds.size(), 5u);
  EXPECT_GE(s.min, 0.0019);
  EXPECT_THROW(lab::time_function([] {}, 0, 0), lab::Error);
}

TEST(Format, Numbers) {
  EXPECT_EQ(lab::with_commas(90177536), "90,177,536");
  EXPECT_EQ(lab::with_commas(-1000), "-1,000");
  EXPECT_EQ(lab::with_commas(999), "999");
  EXPECT_EQ(lab::format_bytes(524288), "512.0 KiB");
  EXPECT_EQ(lab::format_bytes(100), "100 B");
  EXPECT_EQ(lab::format_si(1.5e12), "1.50 T");
}

TEST(Rng, FixedAlgorithmGivesFixedNumbers) {
  // SplitMix64's published first output for seed 0 (the algorithm, not a library, fixes it).
  lab::Rng rng(0);
  EXPECT_EQ(rng.next_u64(), 0xE220A8397B1DCDAFULL);
  lab::Rng a(9), b(9);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.normal(), b.normal());
}
