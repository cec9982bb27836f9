// The sampler: greedy as the temperature → 0 limit, the exact sets kept by top-k / top-p / min-p
// (boundaries and ties), a chi-square test that draws follow the filtered softmax, seeds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <vector>

#include "common/error.hpp"
#include "common/random.hpp"
#include "common/sampler.hpp"

namespace {

std::vector<float> random_logits(lab::Rng& rng, int n, double scale = 3.0) {
  std::vector<float> z(static_cast<std::size_t>(n));
  for (float& v : z) v = static_cast<float>(scale * rng.normal());
  return z;
}

std::set<int> as_set(const std::vector<int>& v) {
  return {v.begin(), v.end()};
}

TEST(Sampler, TemperatureZeroIsArgmaxWithLowestIdOnTies) {
  const std::vector<float> z = {0.5f, 2.0f, -1.0f, 2.0f};
  lab::SamplerSettings s;
  s.temperature = 0;
  const auto p = lab::sampling_distribution(z, s);
  EXPECT_EQ(p, (std::vector<double>{0, 1, 0, 0}));
  lab::Sampler sampler(s);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(sampler.sample(z), 1);
}

TEST(Sampler, SmallTemperatureTendsToGreedy) {
  lab::Rng rng(11);
  lab::SamplerSettings cold, greedy;
  cold.temperature = 1e-6;
  greedy.temperature = 0;
  lab::Sampler a(cold), b(greedy);
  for (int trial = 0; trial < 200; ++trial) {
    const auto z = random_logits(rng, 50);
    EXPECT_EQ(a.sample(z), b.sample(z));
    EXPECT_EQ(b.sample(z), std::max_element(z.begin(), z.end()) - z.begin());
  }
}

TEST(Sampler, SoftmaxWithTemperature) {
  const std::vector<float> z = {1.0f, 2.0f, 3.0f};
  const auto p = lab::softmax(z, 2.0);
  double sum = 0;
  for (float v : z) sum += std::exp(v / 2.0);
  for (std::size_t i = 0; i < z.size(); ++i) EXPECT_NEAR(p[i], std::exp(z[i] / 2.0) / sum, 1e-15);
  // Huge logits must not overflow.
  const auto big = lab::softmax(std::vector<float>{1e30f, 0.0f});
  EXPECT_EQ(big[0], 1.0);
}

TEST(Sampler, TopKKeepsTheKLargestAndBreaksTiesByLowestId) {
  const std::vector<double> p = {0.1, 0.2, 0.3, 0.2, 0.2};
  EXPECT_EQ(lab::top_k_set(p, 1), (std::vector<int>{2}));
  EXPECT_EQ(lab::top_k_set(p, 2), (std::vector<int>{2, 1}));
  EXPECT_EQ(lab::top_k_set(p, 3), (std::vector<int>{2, 1, 3}));
  EXPECT_EQ(lab::top_k_set(p, 0).size(), 5u);   // off
  EXPECT_EQ(lab::top_k_set(p, 99).size(), 5u);  // more than the vocabulary
  lab::Rng rng(3);
  for (int trial = 0; trial < 50; ++trial) {
    const auto q = lab::softmax(random_logits(rng, 40));
    const int k = 1 + static_cast<int>(rng.below(40));
    // Brute force: i is kept iff fewer than k ids are strictly more probable.
    std::set<int> expected;
    for (int i = 0; i < 40; ++i) {
      int above = 0;
      for (double v : q) above += v > q[static_cast<std::size_t>(i)];
      if (above < k) expected.insert(i);
    }
    EXPECT_EQ(as_set(lab::top_k_set(q, k)), expected);
  }
}

TEST(Sampler, TopPBoundaryRule) {
  // Dyadic probabilities: every partial sum is exact, so the boundary is tested, not rounding.
  const std::vector<double> p = {0.125, 0.5, 0.125, 0.25};
  EXPECT_EQ(lab::top_p_set(p, 0.4), (std::vector<int>{1}));
  EXPECT_EQ(lab::top_p_set(p, 0.5), (std::vector<int>{1}));  // mass exactly reaches p: stop
  EXPECT_EQ(lab::top_p_set(p, 0.5000001), (std::vector<int>{1, 3}));
  EXPECT_EQ(lab::top_p_set(p, 0.75), (std::vector<int>{1, 3}));
  EXPECT_EQ(lab::top_p_set(p, 0.76), (std::vector<int>{1, 3, 0}));  // tie 0/2: lowest id
  EXPECT_EQ(lab::top_p_set(p, 1.0).size(), 4u);
  // Ties at the boundary: the minimal set, not every token tied with the last one kept.
  EXPECT_EQ(lab::top_p_set(std::vector<double>{0.25, 0.25, 0.25, 0.25}, 0.5),
            (std::vector<int>{0, 1}));
  // Unnormalized input: p is a share of the total mass.
  EXPECT_EQ(lab::top_p_set(std::vector<double>{1, 2, 1}, 0.5), (std::vector<int>{1}));
}

TEST(Sampler, TopPIsTheSmallestSetReachingP) {
  lab::Rng rng(5);
  for (int trial = 0; trial < 100; ++trial) {
    const auto q = lab::softmax(random_logits(rng, 30));
    const double top_p = 0.05 + 0.9 * rng.uniform();
    const auto kept = lab::top_p_set(q, top_p);
    double mass = 0, smallest = 1;
    for (int id : kept)
      mass += q[static_cast<std::size_t>(id)],
          smallest = std::min(smallest, q[static_cast<std::size_t>(id)]);
    EXPECT_GE(mass, top_p * (1 - 1e-12));  // reaches p
    EXPECT_LT(mass - smallest, top_p);     // one fewer would not
    for (int i = 0; i < 30; ++i)           // and it is the most probable ones
      if (!as_set(kept).count(i)) {
        EXPECT_LE(q[static_cast<std::size_t>(i)], smallest);
      }
  }
}

TEST(Sampler, MinPKeepsTokensAboveAShareOfTheTop) {
  const std::vector<double> p = {0.4, 0.1, 0.2, 0.3};
  EXPECT_EQ(lab::min_p_set(p, 0.5), (std::vector<int>{0, 3, 2}));  // 0.2 >= 0.5 * 0.4: kept
  EXPECT_EQ(lab::min_p_set(p, 0.51), (std::vector<int>{0, 3}));
  EXPECT_EQ(lab::min_p_set(p, 0.0).size(), 4u);
  EXPECT_EQ(lab::min_p_set(p, 1.0), (std::vector<int>{0}));
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegative) {
  const std::vector<float> z = {2.0f, -2.0f, 1.0f};
  const std::vector<int> history = {0, 1, 0, 0};  // repeats count once
  const auto out = lab::apply_repetition_penalty(z, history, 2.0);
  EXPECT_FLOAT_EQ(out[0], 1.0f);
  EXPECT_FLOAT_EQ(out[1], -4.0f);
  EXPECT_FLOAT_EQ(out[2], 1.0f);
}

TEST(Sampler, DistributionIsTheRenormalizedFilteredSoftmax) {
  lab::Rng rng(8);
  const auto z = random_logits(rng, 25);
  lab::SamplerSettings s;
  s.temperature = 0.7;
  s.top_k = 10;
  s.top_p = 0.9;
  const auto p = lab::sampling_distribution(z, s);
  // Rebuild it by hand from the pieces, in HF's order.
  const auto soft = lab::softmax(z, 0.7);
  const auto k_set = lab::top_k_set(soft, 10);
  double k_mass = 0;
  for (int id : k_set) k_mass += soft[static_cast<std::size_t>(id)];
  std::vector<double> after_k(25, 0.0);
  for (int id : k_set)
    after_k[static_cast<std::size_t>(id)] = soft[static_cast<std::size_t>(id)] / k_mass;
  const auto kept = as_set(lab::top_p_set(after_k, 0.9));
  double mass = 0;
  for (int id : kept) mass += after_k[static_cast<std::size_t>(id)];
  for (int i = 0; i < 25; ++i)
    EXPECT_NEAR(p[static_cast<std::size_t>(i)],
                kept.count(i) ? after_k[static_cast<std::size_t>(i)] / mass : 0.0, 1e-15);
  EXPECT_NEAR(std::accumulate(p.begin(), p.end(), 0.0), 1.0, 1e-12);
}

// Chi-square critical value at significance alpha via Wilson–Hilferty; z = 3.719 is alpha = 1e-4.
double chi_square_critical(int df, double z = 3.719) {
  const double a = 2.0 / (9.0 * df);
  return df * std::pow(1 - a + z * std::sqrt(a), 3);
}

TEST(Sampler, ChiSquareFrequenciesFollowTheFilteredSoftmax) {
  lab::Rng rng(21);
  const auto z = random_logits(rng, 30, 1.5);
  lab::SamplerSettings s;
  s.temperature = 0.9;
  s.top_k = 20;
  s.top_p = 0.95;
  s.min_p = 0.01;
  s.seed = 77;
  const auto p = lab::sampling_distribution(z, s);
  lab::Sampler sampler(s);
  const int draws = 40000;
  std::vector<int> counts(30, 0);
  for (int i = 0; i < draws; ++i) ++counts[static_cast<std::size_t>(sampler.sample(z))];
  double chi2 = 0;
  int categories = 0;
  for (std::size_t i = 0; i < 30; ++i) {
    if (p[i] == 0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " was filtered out but drawn";
      continue;
    }
    const double expected = draws * p[i];
    chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
    ++categories;
  }
  ASSERT_GT(categories, 3);
  EXPECT_LT(chi2, chi_square_critical(categories - 1)) << categories << " categories";
  // The same test has teeth: against the unfiltered softmax the statistic explodes.
  const auto plain = lab::softmax(z, 0.9);
  double chi2_plain = 0;
  for (std::size_t i = 0; i < 30; ++i)
    chi2_plain +=
        (counts[i] - draws * plain[i]) * (counts[i] - draws * plain[i]) / (draws * plain[i]);
  EXPECT_GT(chi2_plain, chi_square_critical(29));
}

TEST(Sampler, SameSeedSameTokensDifferentSeedDifferentTokens) {
  lab::Rng rng(4);
  std::vector<std::vector<float>> steps;
  for (int i = 0; i < 64; ++i) steps.push_back(random_logits(rng, 100, 1.0));
  auto run = [&](std::uint64_t seed) {
    lab::SamplerSettings s;
    s.seed = seed;
    s.top_p = 0.9;
    lab::Sampler sampler(s);
    std::vector<int> out;
    for (const auto& z : steps) out.push_back(sampler.sample(z, out));
    return out;
  };
  EXPECT_EQ(run(1), run(1));
  EXPECT_NE(run(1), run(2));
}

TEST(Sampler, DrawIsTheInverseCdf) {
  const std::vector<double> p = {0.25, 0.5, 0.25};  // order: 1, 0, 2
  EXPECT_EQ(lab::draw(p, 0.0), 1);
  EXPECT_EQ(lab::draw(p, 0.49), 1);
  EXPECT_EQ(lab::draw(p, 0.5), 0);
  EXPECT_EQ(lab::draw(p, 0.76), 2);
  EXPECT_EQ(lab::draw(p, 0.9999999999), 2);
}

TEST(Sampler, InvalidSettingsAreClearErrors) {
  auto bad = [](auto change) {
    lab::SamplerSettings s;
    change(s);
    EXPECT_THROW(lab::validate(s), lab::Error);
    EXPECT_THROW(lab::Sampler{s}, lab::Error);
  };
  bad([](lab::SamplerSettings& s) { s.top_p = 0; });
  bad([](lab::SamplerSettings& s) { s.top_p = 1.5; });
  bad([](lab::SamplerSettings& s) { s.top_p = -0.1; });
  bad([](lab::SamplerSettings& s) { s.top_k = -1; });
  bad([](lab::SamplerSettings& s) { s.temperature = -0.5; });
  bad([](lab::SamplerSettings& s) { s.temperature = std::nan(""); });
  bad([](lab::SamplerSettings& s) { s.min_p = 1.5; });
  bad([](lab::SamplerSettings& s) { s.repetition_penalty = 0; });
  try {
    lab::SamplerSettings s;
    s.top_p = 2;
    lab::validate(s);
  } catch (const lab::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--top-p"), std::string::npos) << e.what();
  }
  lab::SamplerSettings ok;
  ok.top_p = 1;
  ok.temperature = 0;
  EXPECT_NO_THROW(lab::validate(ok));
}

}  // namespace
