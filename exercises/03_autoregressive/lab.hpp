#pragma once
/// \file
/// \brief Lab 3 interface (frozen): the autoregressive generation loop without a cache.

#include <vector>

#include "cpu_reference/transformer.hpp"

/// Lab 3: generation by re-running the prefix.
namespace lab03 {

/// Greedy generation without a cache: repeat `steps` times: run model.forward() over the whole
/// sequence, take the argmax of the last row (lowest id on ties), append it. Stop early after
/// appending `stop_id` (when ≥ 0). Returns the prompt followed by the new tokens.
std::vector<int> generate_greedy(const lab::cpu::Transformer<float>& model, std::vector<int> prompt,
                                 int steps, int stop_id = -1);

}  // namespace lab03
