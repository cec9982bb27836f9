#pragma once
/// \file
/// \brief Cross-entropy and perplexity of a token sequence from its teacher-forced logits.

#include <span>
#include <vector>

namespace lab::cpu {

/// −log p(target) under softmax(logits), computed in double with the log-sum-exp shift.
double cross_entropy(std::span<const float> logits, int target);

/// Loss of every prediction: row i of `logits` (n rows of `vocab`) scored against tokens[i + 1],
/// so n − 1 values. Throws lab::Error for fewer than two tokens or an id outside the vocabulary.
std::vector<double> token_losses(std::span<const float> logits, std::size_t vocab,
                                 std::span<const int> tokens);

/// Perplexity exp(mean loss): the effective number of equally likely choices per token.
double perplexity(std::span<const double> losses);

}  // namespace lab::cpu
