#pragma once
/// \file
/// \brief Randomly drawn model shapes for the chain tests: head dims 16–128, GQA ratios 1–4, odd
/// head counts, vocabularies that are not multiples of 8.

#include "common/model_config.hpp"
#include "common/random.hpp"

namespace lab::cpu {

/// A valid random Llama configuration with hidden_size ≤ `max_hidden` (at least one head of the
/// drawn head_dim always fits when max_hidden ≥ 128) and max_seq_len = `max_seq_len`.
ModelConfig random_config(Rng& rng, int max_hidden = 512, int max_seq_len = 256);

}  // namespace lab::cpu
