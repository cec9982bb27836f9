// Chapter 4 against chapters 3 and 2: prefill + decode with a KV cache gives the same tokens and
// logits as re-running the prefix; with a bidirectional mask the cached K/V go stale and the
// logits diverge (seed §10.2.1); bad cache sizes are clear errors.
#include <gtest/gtest.h>

#include <algorithm>

#include "../chain_helpers.hpp"
#include "common/compare.hpp"
#include "common/error.hpp"
#include "common/weights.hpp"
#include "cpu_reference/generation.hpp"
#include "cpu_reference/random_config.hpp"

namespace {

// One thread: ctest runs tests side by side on small CI machines, and OpenMP threads that outnumber
// the cores spin-wait on each other. test_cpu_layers covers the threaded paths.
const bool single_threaded = [] {
  lab::cpu::set_num_threads(1);
  return true;
}();

using namespace lab::cpu;
using lab::testing::chain_tolerance;
using lab::testing::random_tokens;

// Relative L2 distance between the logits of each step of two generations.
std::vector<lab::CompareResult> compare_steps(const Generation& ref, const Generation& got,
                                              const lab::Tolerance& tol, std::size_t V) {
  std::vector<lab::CompareResult> out;
  for (std::size_t s = 0; s < std::min(ref.logits.size(), got.logits.size()); ++s)
    out.push_back(lab::compare(std::span<const float>(ref.logits[s]),
                               std::span<const float>(got.logits[s]), tol, V));
  return out;
}

void check_cache_equals_no_cache(const lab::ModelWeights& w, const std::vector<int>& prompt,
                                 int steps) {
  const Transformer<float> model(w);
  GenerationOptions o;
  o.max_new_tokens = steps;
  const Generation slow = generate_without_cache(model, prompt, o, argmax);
  KVCache<float> cache(w.config, static_cast<int>(prompt.size()) + steps);
  const Generation fast = generate_with_cache(model, cache, prompt, o, argmax);
  EXPECT_EQ(fast.tokens, slow.tokens) << lab::describe(w.config);
  const auto V = static_cast<std::size_t>(w.config.vocab_size);
  const auto tol = chain_tolerance(w.config, slow.tokens.size());
  for (const auto& r : compare_steps(slow, fast, tol, V))
    EXPECT_TRUE(r.passed) << lab::describe(w.config) << ": " << lab::summary(r);
  // And against chapter 2 directly: all_logits from one cached pass == the teacher-forced pass.
  KVCache<float> one_pass(w.config, static_cast<int>(slow.tokens.size()));
  const Matrix<float> cached = model.forward(slow.tokens, one_pass, AttentionMask::Causal, true);
  const Matrix<float> tf = model.forward(slow.tokens);
  const auto r = lab::compare(
      std::span<const float>(tf.data(), static_cast<std::size_t>(tf.size())),
      std::span<const float>(cached.data(), static_cast<std::size_t>(cached.size())), tol, V);
  EXPECT_TRUE(r.passed) << lab::summary(r);
  EXPECT_EQ(r.argmax_agreement, 1.0);
}

TEST(Ch04KVCache, TinyTokenForTokenAgainstNoCache) {
  const lab::ModelWeights w = lab::random_weights(lab::preset("tiny"), 1234);
  check_cache_equals_no_cache(w, {256, 'T', 'h', 'e', ' '}, 24);
}

TEST(Ch04KVCache, RandomShapesUpToTheFullContext) {
  lab::Rng rng(404);
  for (int trial = 0; trial < 5; ++trial) {
    const lab::ModelConfig c = random_config(rng, 384);
    const lab::ModelWeights w = lab::random_weights(c, 70 + static_cast<std::uint64_t>(trial));
    const int steps = trial == 4 ? 16 : 6;
    const int prompt = trial == 4 ? 256 - steps : 1 + static_cast<int>(rng.below(120));
    check_cache_equals_no_cache(w, random_tokens(rng, prompt, c.vocab_size), steps);
  }
}

// Feeds a fixed continuation through both loops so that only the mask decides what differs.
double worst_step_error(const lab::ModelWeights& w, AttentionMask mask) {
  const Transformer<float> model(w);
  const std::vector<int> prompt = {256, 'a', 'b', 'c', 'd', 'e', 'f', 'g'};
  const std::vector<int> continuation = {'h', 'i', 'j', 'k', 'l', 'm'};
  auto scripted = [&continuation](std::size_t& next) {
    return [&continuation, &next](std::span<const float>) { return continuation[next++]; };
  };
  GenerationOptions o;
  o.max_new_tokens = static_cast<int>(continuation.size());
  o.mask = mask;
  std::size_t a = 0, b = 0;
  const Generation slow = generate_without_cache(model, prompt, o, scripted(a));
  KVCache<float> cache(w.config, 64);
  const Generation fast = generate_with_cache(model, cache, prompt, o, scripted(b));
  double worst = 0;
  const auto tol = chain_tolerance(w.config, 16);
  for (const auto& r :
       compare_steps(slow, fast, tol, static_cast<std::size_t>(w.config.vocab_size)))
    worst = std::max(worst, r.rel_l2);
  return worst;
}

TEST(Ch04KVCache, BidirectionalMaskMakesTheCacheStale) {
  const lab::ModelWeights w = lab::random_weights(lab::preset("tiny"), 1234);
  const double tol = chain_tolerance(w.config, 16).rel_l2;
  const double causal = worst_step_error(w, AttentionMask::Causal);
  const double bidirectional = worst_step_error(w, AttentionMask::Bidirectional);
  EXPECT_LT(causal, tol);
  // "Large": a thousand times the round-off tolerance, i.e. a different function, not noise.
  EXPECT_GT(bidirectional, 1000 * tol) << "causal " << causal;
}

TEST(Ch04KVCache, BadInputIsAClearError) {
  const lab::ModelWeights w = lab::random_weights(lab::preset("tiny"), 1);
  const Transformer<float> model(w);
  GenerationOptions o;
  o.max_new_tokens = 4;
  KVCache<float> small(w.config, 6);
  // Prompt longer than the cache.
  EXPECT_THROW(generate_with_cache(model, small, {1, 2, 3, 4, 5, 6, 7}, o, argmax), lab::Error);
  // Prompt fits but prompt + new tokens do not.
  EXPECT_THROW(generate_with_cache(model, small, {1, 2, 3, 4}, o, argmax), lab::Error);
  EXPECT_THROW(generate_with_cache(model, small, {}, o, argmax), lab::Error);
  EXPECT_THROW(generate_with_cache(model, small, {1, 999}, o, argmax), lab::Error);
  EXPECT_THROW(KVCache<float>(w.config, 0), lab::Error);
  // Exactly full is fine: 3 prompt tokens + 4 new need 6 slots (the last token is never cached).
  EXPECT_NO_THROW(generate_with_cache(model, small, {1, 2, 3}, o, argmax));
}

}  // namespace
