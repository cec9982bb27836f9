// Lab 5 against the course's sampler: top-p sets and temperature draws.
#include <gtest/gtest.h>

#include <algorithm>

#include "common/random.hpp"
#include "common/sampler.hpp"
#include "lab.hpp"

namespace {

TEST(Lab05, TopPBoundaryAndTies) {
  const std::vector<double> p = {0.125, 0.5, 0.125, 0.25};
  EXPECT_EQ(lab05::top_p_filter(p, 0.5), (std::vector<int>{1}));
  EXPECT_EQ(lab05::top_p_filter(p, 0.75), (std::vector<int>{1, 3}));
  EXPECT_EQ(lab05::top_p_filter(p, 0.76), (std::vector<int>{1, 3, 0}));
  EXPECT_EQ(lab05::top_p_filter(p, 1.0).size(), 4u);
  EXPECT_EQ(lab05::top_p_filter(std::vector<double>{0.25, 0.25, 0.25, 0.25}, 0.5),
            (std::vector<int>{0, 1}));
}

TEST(Lab05, TopPMatchesTheCourseSamplerOnRandomDistributions) {
  lab::Rng rng(6);
  for (int trial = 0; trial < 100; ++trial) {
    std::vector<float> z(50);
    for (float& v : z) v = static_cast<float>(2 * rng.normal());
    const auto p = lab::softmax(z);
    const double top_p = 0.01 + 0.99 * rng.uniform();
    EXPECT_EQ(lab05::top_p_filter(p, top_p), lab::top_p_set(p, top_p)) << "p=" << top_p;
  }
}

TEST(Lab05, TemperatureDrawsMatchTheInverseCdf) {
  lab::Rng rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<float> z(20);
    for (float& v : z) v = static_cast<float>(rng.normal());
    const double t = 0.2 + 1.5 * rng.uniform(), u = rng.uniform();
    EXPECT_EQ(lab05::sample_with_temperature(z, t, u), lab::draw(lab::softmax(z, t), u));
  }
  const std::vector<float> z = {0.1f, 3.0f, 2.9f};
  EXPECT_EQ(lab05::sample_with_temperature(z, 1e-4, 0.999), 1);  // T → 0: the argmax
}

}  // namespace
