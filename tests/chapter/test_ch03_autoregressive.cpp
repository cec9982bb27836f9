// Chapter 3 against chapter 2: at every step of generation without a cache, the logits equal the
// teacher-forced logits at that position of the final sequence (tiny and random shapes).
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

void check_autoregressive_equals_teacher_forcing(const lab::ModelWeights& w,
                                                 std::vector<int> prompt, int steps) {
  const Transformer<float> model(w);
  GenerationOptions o;
  o.max_new_tokens = steps;
  const Generation g = generate_without_cache(model, prompt, o, argmax);
  ASSERT_EQ(g.tokens.size(), prompt.size() + static_cast<std::size_t>(steps));
  const Matrix<float> tf = model.forward(g.tokens);  // (len, V)
  const auto V = static_cast<std::size_t>(w.config.vocab_size);
  const auto tol = chain_tolerance(w.config, g.tokens.size());
  for (int s = 0; s < steps; ++s) {
    const Eigen::Index row = static_cast<Eigen::Index>(prompt.size()) - 1 + s;
    const std::span<const float> ref(tf.row(row).data(), V);
    const auto r =
        lab::compare(ref, std::span<const float>(g.logits[static_cast<std::size_t>(s)]), tol, V);
    EXPECT_TRUE(r.passed) << lab::describe(w.config) << " step " << s << ": " << lab::summary(r);
    // The token chosen at step s is the next input: teacher forcing on the generated text.
    EXPECT_EQ(g.tokens[prompt.size() + static_cast<std::size_t>(s)], argmax(ref));
  }
}

TEST(Ch03Autoregressive, TinyStepLogitsEqualTeacherForcedRows) {
  const lab::ModelWeights w = lab::random_weights(lab::preset("tiny"), 1234);
  check_autoregressive_equals_teacher_forcing(w, {256, 'H', 'e', 'l', 'l', 'o'}, 12);
}

TEST(Ch03Autoregressive, RandomShapesUpToTheFullContext) {
  lab::Rng rng(303);
  for (int trial = 0; trial < 5; ++trial) {
    const lab::ModelConfig c = random_config(rng, 384);
    const lab::ModelWeights w = lab::random_weights(c, 40 + static_cast<std::uint64_t>(trial));
    const int steps = 4;
    // The last trial fills the whole context: prompt + steps = max_seq_len = 256.
    const int prompt = trial == 4 ? 256 - steps : 1 + static_cast<int>(rng.below(100));
    check_autoregressive_equals_teacher_forcing(w, random_tokens(rng, prompt, c.vocab_size), steps);
  }
}

TEST(Ch03Autoregressive, StopsOnEndOfGenerationAndRejectsEmptyPrompt) {
  const lab::ModelWeights w = lab::random_weights(lab::preset("tiny"), 1);
  const Transformer<float> model(w);
  GenerationOptions o;
  o.max_new_tokens = 10;
  int calls = 0;
  o.is_stop = [](int id) { return id == 7; };
  const auto g = generate_without_cache(
      model, {256, 1}, o, [&](std::span<const float>) { return ++calls == 3 ? 7 : 5; });
  EXPECT_EQ(g.tokens, (std::vector<int>{256, 1, 5, 5, 7}));
  EXPECT_THROW(generate_without_cache(model, {}, o, argmax), lab::Error);
}

}  // namespace
