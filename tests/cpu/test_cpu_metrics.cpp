// Serving metrics (TTFT, TPOT, ITL percentiles, throughput) and the loss functions of chapter 2.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/error.hpp"
#include "common/metrics.hpp"
#include "cpu_reference/loss.hpp"

namespace {

TEST(Metrics, DefinitionsOnKnownArrivalTimes) {
  // Token k arrives at t_k; gaps 0.05, 0.05, 0.10 (and a long first wait: the prefill).
  const std::vector<double> t = {0.10, 0.15, 0.20, 0.30};
  const auto m = lab::latency_metrics(t);
  EXPECT_EQ(m.tokens, 4);
  EXPECT_DOUBLE_EQ(m.ttft, t[0]);
  EXPECT_DOUBLE_EQ(m.tpot, (t[3] - t[0]) / 3);
  EXPECT_NEAR(m.itl_p50, 0.05, 1e-15);
  EXPECT_NEAR(m.itl_p99, 0.10, 1e-15);
  EXPECT_DOUBLE_EQ(m.total, t[3]);
  EXPECT_DOUBLE_EQ(m.throughput, 4 / t[3]);
}

TEST(Metrics, P99SeesTheOneSlowToken) {
  std::vector<double> t;
  double now = 0.5;
  for (int i = 0; i < 200; ++i) t.push_back(now += (i == 100 ? 1.0 : 0.01));
  const auto m = lab::latency_metrics(t);
  EXPECT_NEAR(m.itl_p50, 0.01, 1e-9);
  EXPECT_NEAR(m.itl_p99, 0.01, 1e-9);  // 1 slow gap in 199 is below the 99th percentile's reach
  t.back() += 2.0;                     // a second slow gap at the end
  EXPECT_GT(lab::latency_metrics(t).itl_p99, 0.5);
}

TEST(Metrics, BadInput) {
  EXPECT_THROW(lab::latency_metrics(std::vector<double>{}), lab::Error);
  EXPECT_THROW(lab::latency_metrics(std::vector<double>{0.2, 0.1}), lab::Error);
  const auto one = lab::latency_metrics(std::vector<double>{0.25});
  EXPECT_DOUBLE_EQ(one.ttft, 0.25);
  EXPECT_EQ(one.tpot, 0);
}

TEST(Loss, CrossEntropyIsMinusLogSoftmax) {
  const std::vector<float> z = {1.0f, -0.5f, 3.0f, 0.25f};
  double sum = 0;
  for (float v : z) sum += std::exp(static_cast<double>(v));
  for (int t = 0; t < 4; ++t)
    EXPECT_NEAR(lab::cpu::cross_entropy(z, t), -std::log(std::exp(static_cast<double>(z[t])) / sum),
                1e-12);
  // No overflow for large logits.
  EXPECT_NEAR(lab::cpu::cross_entropy(std::vector<float>{1000.0f, 1000.0f}, 0), std::log(2.0),
              1e-12);
  EXPECT_THROW(lab::cpu::cross_entropy(z, 4), lab::Error);
}

TEST(Loss, UniformLogitsHavePerplexityV) {
  const std::size_t V = 37;
  const std::vector<int> tokens = {1, 5, 9, 36};
  const std::vector<float> logits(V * tokens.size(), 0.5f);
  const auto losses = lab::cpu::token_losses(logits, V, tokens);
  ASSERT_EQ(losses.size(), 3u);
  EXPECT_NEAR(lab::cpu::perplexity(losses), static_cast<double>(V), 1e-9);
  EXPECT_THROW(lab::cpu::token_losses(logits, V, std::vector<int>{1}), lab::Error);
}

}  // namespace
