// Lab 5, reference solution.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "lab.hpp"

namespace lab05 {

namespace {
std::vector<int> by_probability(std::span<const double> probs) {
  std::vector<int> ids(probs.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int a, int b) {
    return probs[static_cast<std::size_t>(a)] > probs[static_cast<std::size_t>(b)];
  });
  return ids;
}
}  // namespace

std::vector<int> top_p_filter(std::span<const double> probs, double p) {
  const double total = std::accumulate(probs.begin(), probs.end(), 0.0);
  std::vector<int> kept;
  double before = 0;
  for (int id : by_probability(probs)) {
    if (p < 1 && before >= p * total) break;
    kept.push_back(id);
    before += probs[static_cast<std::size_t>(id)];
  }
  return kept;
}

int sample_with_temperature(std::span<const float> logits, double temperature, double u) {
  const double m = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  double sum = 0;
  for (std::size_t i = 0; i < p.size(); ++i)
    sum += (p[i] = std::exp((static_cast<double>(logits[i]) - m) / temperature));
  for (double& v : p) v /= sum;
  const std::vector<int> order = by_probability(p);
  double cumulative = 0;
  for (int id : order) {
    cumulative += p[static_cast<std::size_t>(id)];
    if (u < cumulative) return id;
  }
  return order.back();
}

}  // namespace lab05
