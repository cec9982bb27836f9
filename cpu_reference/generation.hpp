#pragma once
/// \file
/// \brief Token-by-token generation: without a cache (chapter 3, re-runs the prefix every step)
/// and with a KV cache (chapter 4, prefill + decode steps).

#include <functional>
#include <span>
#include <vector>

#include "cpu_reference/transformer.hpp"

namespace lab::cpu {

/// Picks the next token from one row of logits (greedy argmax, or a sampler).
using PickToken = std::function<int(std::span<const float> logits)>;

/// What a generation loop needs besides the model and the prompt.
struct GenerationOptions {
  int max_new_tokens = 16;                     ///< stop after this many new tokens
  AttentionMask mask = AttentionMask::Causal;  ///< the mask every forward pass uses
  std::function<bool(int)> is_stop;            ///< stop after emitting such a token (may be empty)
  std::function<void(int)> on_token;           ///< called as each token is chosen (streaming)
  bool keep_logits = true;                     ///< keep each step's logits for checking
};

/// The result of one generation.
struct Generation {
  std::vector<int> tokens;                 ///< prompt followed by the generated tokens
  std::size_t prompt_length = 0;           ///< tokens of the prompt
  std::vector<std::vector<float>> logits;  ///< step s: the logits that chose generated token s
  std::vector<double> step_seconds;        ///< wall time of step s (step 0 includes the prefill)
};

/// Index of the largest logit; ties go to the lowest id so that greedy decoding is deterministic.
int argmax(std::span<const float> logits);

/// Chapter 3: every step runs the teacher-forced forward over the whole sequence so far and keeps
/// the last row. Step s costs a pass over prompt + s tokens, so n steps cost O(n²) token-passes.
Generation generate_without_cache(const Transformer<float>& model, std::vector<int> prompt,
                                  const GenerationOptions& options, const PickToken& pick);

/// Chapter 4: one prefill pass over the prompt fills `cache` (which must be empty), then each
/// decode step runs only the newest token against the cache.
Generation generate_with_cache(const Transformer<float>& model, KVCache<float>& cache,
                               std::vector<int> prompt, const GenerationOptions& options,
                               const PickToken& pick);

}  // namespace lab::cpu
