#include "cpu_reference/loss.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "common/error.hpp"

namespace lab::cpu {

//! [cross_entropy]
double cross_entropy(std::span<const float> logits, int target) {
  require(target >= 0 && static_cast<std::size_t>(target) < logits.size(),
          "target id " + std::to_string(target) + " is outside the vocabulary");
  // log Σ exp(z) = m + log Σ exp(z − m): no overflow for large logits.
  const double m = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float z : logits) sum += std::exp(static_cast<double>(z) - m);
  return m + std::log(sum) - static_cast<double>(logits[static_cast<std::size_t>(target)]);
}
//! [cross_entropy]

std::vector<double> token_losses(std::span<const float> logits, std::size_t vocab,
                                 std::span<const int> tokens) {
  require(tokens.size() >= 2, "a loss needs at least two tokens (one to read, one to predict)");
  require(vocab > 0 && logits.size() >= (tokens.size() - 1) * vocab,
          "token_losses: fewer logits than predictions");
  std::vector<double> losses;
  for (std::size_t i = 0; i + 1 < tokens.size(); ++i)
    losses.push_back(cross_entropy(logits.subspan(i * vocab, vocab), tokens[i + 1]));
  return losses;
}

double perplexity(std::span<const double> losses) {
  require(!losses.empty(), "perplexity of no losses");
  return std::exp(std::accumulate(losses.begin(), losses.end(), 0.0) /
                  static_cast<double>(losses.size()));
}

}  // namespace lab::cpu
