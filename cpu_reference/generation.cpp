#include "cpu_reference/generation.hpp"

#include <algorithm>
#include <string>

#include "common/error.hpp"
#include "common/timing.hpp"

namespace lab::cpu {

int argmax(std::span<const float> logits) {
  require(!logits.empty(), "argmax of no logits");
  // std::max_element returns the first maximum: the lowest id wins a tie.
  return static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

namespace {

// Records one chosen token; returns true when generation must stop.
bool emit(Generation& g, const GenerationOptions& o, std::span<const float> row, int token,
          double seconds) {
  if (o.keep_logits) g.logits.emplace_back(row.begin(), row.end());
  g.step_seconds.push_back(seconds);
  g.tokens.push_back(token);
  if (o.on_token) o.on_token(token);
  return o.is_stop && o.is_stop(token);
}

void check_options(const std::vector<int>& prompt, const GenerationOptions& o) {
  require(!prompt.empty(), "empty prompt: at least one token is needed to start generating");
  require(o.max_new_tokens >= 0, "max_new_tokens must not be negative");
}

}  // namespace

//! [generate_without_cache]
Generation generate_without_cache(const Transformer<float>& model, std::vector<int> prompt,
                                  const GenerationOptions& o, const PickToken& pick) {
  check_options(prompt, o);
  Generation g;
  g.prompt_length = prompt.size();
  g.tokens = std::move(prompt);
  for (int step = 0; step < o.max_new_tokens; ++step) {
    Stopwatch clock;
    // Re-run the whole sequence: nothing from the previous step is reused.
    const Matrix<float> logits = model.forward(g.tokens, o.mask);  // (len, V)
    const auto last = logits.row(logits.rows() - 1);
    const std::span<const float> row(last.data(), static_cast<std::size_t>(last.size()));
    const int token = pick(row);
    if (emit(g, o, row, token, clock.seconds())) break;
  }
  return g;
}
//! [generate_without_cache]

//! [generate_with_cache]
Generation generate_with_cache(const Transformer<float>& model, KVCache<float>& cache,
                               std::vector<int> prompt, const GenerationOptions& o,
                               const PickToken& pick) {
  check_options(prompt, o);
  require(cache.length() == 0, "generate_with_cache needs an empty KV cache");
  // Every token but the last one generated is written to the cache.
  const std::size_t needed =
      prompt.size() + static_cast<std::size_t>(std::max(o.max_new_tokens, 1)) - 1;
  require(needed <= static_cast<std::size_t>(cache.capacity()),
          "prompt of " + std::to_string(prompt.size()) + " tokens plus " +
              std::to_string(o.max_new_tokens) + " new ones needs " + std::to_string(needed) +
              " KV cache slots, the cache holds " + std::to_string(cache.capacity()));
  Generation g;
  g.prompt_length = prompt.size();
  g.tokens = std::move(prompt);
  if (o.max_new_tokens == 0) return g;
  Stopwatch clock;
  // Prefill (预填充): one pass over the whole prompt writes its K/V into the cache.
  Matrix<float> logits = model.forward(g.tokens, cache, o.mask);  // (1, V)
  for (int step = 0;; ++step) {
    const std::span<const float> row(logits.data(), static_cast<std::size_t>(logits.size()));
    const int token = pick(row);
    if (emit(g, o, row, token, clock.seconds()) || step + 1 == o.max_new_tokens) break;
    clock.reset();
    // Decode: only the new token goes through the model; its K/V are appended to the cache.
    const int newest[] = {token};
    logits = model.forward(newest, cache, o.mask);  // (1, V)
  }
  return g;
}
//! [generate_with_cache]

}  // namespace lab::cpu
