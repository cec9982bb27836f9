#pragma once
/// \file
/// \brief Choosing the next token from logits: greedy, temperature, top-k, top-p, min-p and a
/// repetition penalty, with a seeded generator whose algorithm is fixed (lab::Rng), so that a seed
/// gives the same tokens on every platform. No Eigen: the CUDA chapters reuse it on host logits.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/random.hpp"

namespace lab {

/// The knobs of the sampler. The defaults sample from the plain softmax.
struct SamplerSettings {
  double temperature = 1.0;  ///< divides the logits; 0 means greedy (argmax)
  int top_k = 0;             ///< keep the k most likely tokens; 0 = off
  double top_p = 1.0;        ///< keep the smallest set with mass ≥ p, p in (0, 1]; 1 = off
  double min_p = 0.0;        ///< keep tokens with prob ≥ min_p · max prob, in [0, 1]; 0 = off
  double repetition_penalty = 1.0;  ///< > 0; 1 = off; > 1 discourages tokens already seen
  std::uint64_t seed = 1234;        ///< seed of the generator
};

/// Throws lab::Error naming the flag when a setting is out of range (temperature < 0, top_k < 0,
/// top_p outside (0, 1], min_p outside [0, 1], repetition_penalty ≤ 0, or a NaN).
void validate(const SamplerSettings& settings);

/// One line, e.g. "temperature 0.8, top-k 40, top-p 0.95, min-p 0, repetition penalty 1".
std::string describe(const SamplerSettings& settings);

/// Softmax of logits / temperature in double (temperature > 0), shifted by the maximum.
std::vector<double> softmax(std::span<const float> logits, double temperature = 1.0);

/// CTRL/HF repetition penalty on a copy of the logits: every id in `history` has its logit divided
/// by `penalty` when positive and multiplied by it when negative (each id once).
std::vector<float> apply_repetition_penalty(std::span<const float> logits,
                                            std::span<const int> history, double penalty);

/// Ids ordered by probability, highest first; equal probabilities go lowest id first. Every filter
/// below walks this order, which makes ties deterministic.
std::vector<int> order_by_probability(std::span<const double> probs);

/// The k most probable ids (all of them when k is 0 or ≥ the vocabulary), in that order.
std::vector<int> top_k_set(std::span<const double> probs, int k);

/// Nucleus: the shortest prefix of order_by_probability() whose mass reaches p·(total mass).
/// Boundary rule: a token is kept when the mass of the tokens before it is still below p, so the
/// token that crosses p is in, and a token tied with the last one kept is out.
std::vector<int> top_p_set(std::span<const double> probs, double p);

/// Ids with prob ≥ min_p · (largest prob), most probable first.
std::vector<int> min_p_set(std::span<const double> probs, double min_p);

/// The distribution the sampler draws from: repetition penalty, temperature softmax, then top-k,
/// top-p (on the renormalized survivors) and min-p, as Hugging Face orders them. Zero outside the
/// kept set, sums to 1. Temperature 0 gives a one-hot vector on the argmax (lowest id on ties).
std::vector<double> sampling_distribution(std::span<const float> logits,
                                          const SamplerSettings& settings,
                                          std::span<const int> history = {});

/// Inverse-CDF draw: walks ids in order_by_probability() order and returns the first whose
/// cumulative probability exceeds u ∈ [0, 1).
int draw(std::span<const double> probs, double u);

/// A seeded sampler: same settings, same seed, same logits → same tokens, everywhere.
class Sampler {
 public:
  /// Validates `settings` and seeds the generator.
  explicit Sampler(const SamplerSettings& settings);
  /// Next token for `logits`; `history` (prompt and generated ids) feeds the repetition penalty.
  int sample(std::span<const float> logits, std::span<const int> history = {});
  const SamplerSettings& settings() const { return settings_; }

 private:
  SamplerSettings settings_;
  Rng rng_;
};

}  // namespace lab
