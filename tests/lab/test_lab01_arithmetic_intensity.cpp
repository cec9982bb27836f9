// Lab 1 grading tests: the seed's worked numbers, then random shapes against the course's cost
// model (common/cost_model), which the lab does not use.
#include <gtest/gtest.h>

#include <cmath>

#include "common/cost_model.hpp"
#include "common/random.hpp"
#include "lab.hpp"

TEST(Lab01, SeedWorkedExample) {
  const auto c = lab01::matmul_cost(1, 4096, 11008, 2);
  EXPECT_EQ(c.flops, 90177536.0);
  EXPECT_EQ(c.bytes_transferred, 90207744.0);
  EXPECT_NEAR(c.intensity, 0.99966, 1e-5);
}

TEST(Lab01, H100RidgePoint) {
  EXPECT_NEAR(lab01::critical_intensity(989e12, 3.35e12), 295.22, 0.01);
}

TEST(Lab01, BatchSweepMatchesSeed) {
  // The seed prints these intensities for B = 1, 16, 64, 256, 512 (one decimal).
  const std::pair<int, double> expected[] = {
      {1, 1.0}, {16, 15.9}, {64, 62.7}, {256, 235.8}, {512, 437.0}};
  for (auto [B, I] : expected)
    EXPECT_NEAR(lab01::matmul_cost(B, 4096, 11008, 2).intensity, I, 0.05) << "B=" << B;
}

TEST(Lab01, MatchesCostModelOnRandomShapes) {
  lab::Rng rng(7);
  for (int i = 0; i < 200; ++i) {
    const auto B = static_cast<std::int64_t>(1 + rng.below(2048));
    const auto D = static_cast<std::int64_t>(1 + rng.below(16384));
    const auto F = static_cast<std::int64_t>(1 + rng.below(65536));
    const int bytes = (i % 3 == 0) ? 4 : (i % 3 == 1 ? 2 : 1);
    const lab::DType dtype =
        bytes == 4 ? lab::DType::FP32 : (bytes == 2 ? lab::DType::BF16 : lab::DType::INT8);
    const auto ref = lab::matmul_cost(B, D, F, dtype);
    const auto got = lab01::matmul_cost(B, D, F, bytes);
    EXPECT_DOUBLE_EQ(got.flops, ref.flops);
    EXPECT_DOUBLE_EQ(got.bytes_transferred, ref.bytes());
    EXPECT_NEAR(got.intensity, ref.intensity(), 1e-12 * ref.intensity());
  }
}

TEST(Lab01, CrossoverIsTheFirstComputeBoundBatch) {
  const double ridge = 989e12 / 3.35e12;
  const auto B = lab01::smallest_compute_bound_batch(4096, 11008, 2, ridge);
  ASSERT_GT(B, 1);
  EXPECT_GE(lab01::matmul_cost(B, 4096, 11008, 2).intensity, ridge);
  EXPECT_LT(lab01::matmul_cost(B - 1, 4096, 11008, 2).intensity, ridge);
  const auto reference =
      lab::crossover_batch(4096, 11008, lab::DType::FP16, lab::hardware_preset("h100"));
  ASSERT_TRUE(reference.has_value());
  EXPECT_EQ(B, *reference);
}

TEST(Lab01, NoCrossoverWhenTheRidgeIsOutOfReach) {
  // D = F = 64 in fp32: the intensity can never exceed 64·64 / (4·128) = 8 FLOP/byte.
  EXPECT_EQ(lab01::smallest_compute_bound_batch(64, 64, 4, 295.2), -1);
}

TEST(Lab01, KvCacheSizes) {
  // Llama-2-7B fp16: 0.5 MiB per token; SmolLM2-135M fp16: 23,040 bytes per token.
  EXPECT_EQ(lab01::kv_cache_bytes(1, 32, 32, 128, 2), 512 * 1024);
  EXPECT_EQ(lab01::kv_cache_bytes(1, 30, 3, 64, 2), 23040);
  EXPECT_EQ(lab01::kv_cache_bytes(4096, 32, 8, 128, 2), 4096LL * 131072);
  for (const auto& name : lab::preset_names()) {
    const auto c = lab::preset(name);
    EXPECT_EQ(lab01::kv_cache_bytes(1000, c.num_layers, c.num_kv_heads, c.head_dim, 4),
              1000 * lab::kv_cache_bytes_per_token(c, lab::DType::FP32))
        << name;
  }
}
