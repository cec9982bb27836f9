#pragma once
/// \file
/// \brief Lab 5 interface (frozen): top-p filtering and temperature sampling.

#include <span>
#include <vector>

/// Lab 5: choosing a token.
namespace lab05 {

/// Ids of the smallest set of most probable tokens whose mass reaches p · (total mass), most
/// probable first, equal probabilities lowest id first; a token is kept while the mass kept before
/// it is below p. p in (0, 1].
std::vector<int> top_p_filter(std::span<const double> probs, double p);

/// Draws from softmax(logits / temperature) (temperature > 0) by inverse CDF with the uniform
/// number u ∈ [0, 1): walk ids from most to least probable (ties: lowest id first) and return the
/// first whose cumulative probability exceeds u.
int sample_with_temperature(std::span<const float> logits, double temperature, double u);

}  // namespace lab05
