#include "common/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <set>

#include "common/error.hpp"

namespace lab {

void validate(const SamplerSettings& s) {
  auto fail = [](const char* flag, const char* rule, double value) {
    char buffer[160];
    std::snprintf(buffer, sizeof buffer, "%s must be %s, got %g", flag, rule, value);
    throw Error(buffer);
  };
  if (!(s.temperature >= 0) || !std::isfinite(s.temperature))
    fail("--temperature", "a finite number >= 0 (0 = greedy)", s.temperature);
  if (s.top_k < 0) fail("--top-k", ">= 0 (0 = off)", s.top_k);
  if (!(s.top_p > 0 && s.top_p <= 1)) fail("--top-p", "in (0, 1] (1 = off)", s.top_p);
  if (!(s.min_p >= 0 && s.min_p <= 1)) fail("--min-p", "in [0, 1] (0 = off)", s.min_p);
  if (!(s.repetition_penalty > 0) || !std::isfinite(s.repetition_penalty))
    fail("--repetition-penalty", "a finite number > 0 (1 = off)", s.repetition_penalty);
}

std::string describe(const SamplerSettings& s) {
  char buffer[200];
  if (s.temperature == 0) return "greedy (temperature 0)";
  std::snprintf(buffer, sizeof buffer,
                "temperature %g, top-k %d, top-p %g, min-p %g, repetition penalty %g, seed %llu",
                s.temperature, s.top_k, s.top_p, s.min_p, s.repetition_penalty,
                static_cast<unsigned long long>(s.seed));
  return buffer;
}

//! [softmax]
std::vector<double> softmax(std::span<const float> logits, double temperature) {
  require(!logits.empty(), "softmax of no logits");
  require(temperature > 0, "softmax needs a positive temperature");
  // Subtracting the maximum changes nothing mathematically and keeps exp() from overflowing.
  const double max_logit = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  double sum = 0;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    p[i] = std::exp((static_cast<double>(logits[i]) - max_logit) / temperature);
    sum += p[i];
  }
  for (double& v : p) v /= sum;
  return p;
}
//! [softmax]

std::vector<float> apply_repetition_penalty(std::span<const float> logits,
                                            std::span<const int> history, double penalty) {
  std::vector<float> out(logits.begin(), logits.end());
  const std::set<int> seen(history.begin(), history.end());
  for (int id : seen) {
    if (id < 0 || static_cast<std::size_t>(id) >= out.size()) continue;
    float& z = out[static_cast<std::size_t>(id)];
    z = static_cast<float>(z > 0 ? z / penalty : z * penalty);
  }
  return out;
}

std::vector<int> order_by_probability(std::span<const double> probs) {
  std::vector<int> ids(probs.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int a, int b) {
    return probs[static_cast<std::size_t>(a)] > probs[static_cast<std::size_t>(b)];
  });
  return ids;
}

std::vector<int> top_k_set(std::span<const double> probs, int k) {
  require(k >= 0, "top-k must be >= 0");
  std::vector<int> ids = order_by_probability(probs);
  if (k > 0 && static_cast<std::size_t>(k) < ids.size()) ids.resize(static_cast<std::size_t>(k));
  return ids;
}

//! [top_p]
std::vector<int> top_p_set(std::span<const double> probs, double p) {
  require(p > 0 && p <= 1, "top-p must be in (0, 1]");
  const std::vector<int> order = order_by_probability(probs);
  const double total = std::accumulate(probs.begin(), probs.end(), 0.0);
  std::vector<int> kept;
  double mass_before = 0;  // mass of the tokens already kept
  for (int id : order) {
    // Keep going while the kept mass is still short of p: the token that crosses p is kept.
    if (p < 1 && mass_before >= p * total) break;
    kept.push_back(id);
    mass_before += probs[static_cast<std::size_t>(id)];
  }
  return kept;
}
//! [top_p]

std::vector<int> min_p_set(std::span<const double> probs, double min_p) {
  require(min_p >= 0 && min_p <= 1, "min-p must be in [0, 1]");
  const std::vector<int> order = order_by_probability(probs);
  std::vector<int> kept;
  if (order.empty()) return kept;
  // The threshold scales with the confidence of the top token (Nguyen et al. 2024).
  const double threshold = min_p * probs[static_cast<std::size_t>(order.front())];
  for (int id : order) {
    if (probs[static_cast<std::size_t>(id)] < threshold) break;
    kept.push_back(id);
  }
  return kept;
}

namespace {

// Zero outside `kept`, renormalized inside.
std::vector<double> restrict_to(std::span<const double> probs, const std::vector<int>& kept) {
  std::vector<double> out(probs.size(), 0.0);
  double mass = 0;
  for (int id : kept) mass += probs[static_cast<std::size_t>(id)];
  for (int id : kept)
    out[static_cast<std::size_t>(id)] = probs[static_cast<std::size_t>(id)] / mass;
  return out;
}

}  // namespace

//! [sampling_distribution]
std::vector<double> sampling_distribution(std::span<const float> logits, const SamplerSettings& s,
                                          std::span<const int> history) {
  validate(s);
  require(!logits.empty(), "sampling from no logits");
  const std::vector<float> z = s.repetition_penalty != 1.0
                                   ? apply_repetition_penalty(logits, history, s.repetition_penalty)
                                   : std::vector<float>(logits.begin(), logits.end());
  if (s.temperature == 0) {  // greedy: all the mass on the (first) largest logit
    std::vector<double> one_hot(z.size(), 0.0);
    one_hot[static_cast<std::size_t>(std::max_element(z.begin(), z.end()) - z.begin())] = 1.0;
    return one_hot;
  }
  std::vector<double> p = softmax(z, s.temperature);
  if (s.top_k > 0) p = restrict_to(p, top_k_set(p, s.top_k));
  if (s.top_p < 1) p = restrict_to(p, top_p_set(p, s.top_p));
  if (s.min_p > 0) p = restrict_to(p, min_p_set(p, s.min_p));
  return p;
}
//! [sampling_distribution]

int draw(std::span<const double> probs, double u) {
  require(!probs.empty(), "drawing from an empty distribution");
  const std::vector<int> order = order_by_probability(probs);
  double cumulative = 0;
  for (int id : order) {
    cumulative += probs[static_cast<std::size_t>(id)];
    if (u < cumulative) return id;
  }
  // Rounding can leave the total a hair below 1: fall back to the last token with mass.
  for (auto it = order.rbegin(); it != order.rend(); ++it)
    if (probs[static_cast<std::size_t>(*it)] > 0) return *it;
  return order.front();
}

Sampler::Sampler(const SamplerSettings& settings) : settings_(settings), rng_(settings.seed) {
  validate(settings_);
}

int Sampler::sample(std::span<const float> logits, std::span<const int> history) {
  const std::vector<double> p = sampling_distribution(logits, settings_, history);
  // One uniform number per token, even for greedy, so the stream of draws does not depend on it.
  return draw(p, rng_.uniform());
}

}  // namespace lab
