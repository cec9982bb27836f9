// Lab 3 against the course's generation loop without a cache.
#include <gtest/gtest.h>

#include "common/weights.hpp"
#include "cpu_reference/generation.hpp"
#include "cpu_reference/random_config.hpp"
#include "lab.hpp"

namespace {

TEST(Lab03, GreedyTokensMatchTheReferenceLoop) {
  lab::cpu::set_num_threads(1);
  lab::Rng rng(5);
  for (const lab::ModelConfig& c : {lab::preset("tiny"), lab::cpu::random_config(rng, 256)}) {
    const lab::cpu::Transformer<float> model(lab::random_weights(c, 17));
    const std::vector<int> prompt = {1, 2, 3, 4};
    lab::cpu::GenerationOptions o;
    o.max_new_tokens = 10;
    const auto ref = lab::cpu::generate_without_cache(model, prompt, o, lab::cpu::argmax);
    EXPECT_EQ(lab03::generate_greedy(model, prompt, 10), ref.tokens) << lab::describe(c);
  }
}

TEST(Lab03, EachTokenIsTheArgmaxOfTheTeacherForcedRow) {
  const lab::cpu::Transformer<float> model(lab::random_weights(lab::preset("tiny"), 3));
  const std::vector<int> out = lab03::generate_greedy(model, {256, 'a'}, 6);
  ASSERT_EQ(out.size(), 8u);
  const lab::cpu::Matrix<float> tf = model.forward(out);
  for (std::size_t i = 2; i < out.size(); ++i) {
    Eigen::Index best = 0;
    tf.row(static_cast<Eigen::Index>(i) - 1).maxCoeff(&best);
    EXPECT_EQ(out[i], best) << "position " << i;
  }
}

TEST(Lab03, StopsRightAfterTheStopToken) {
  const lab::cpu::Transformer<float> model(lab::random_weights(lab::preset("tiny"), 3));
  const std::vector<int> free_run = lab03::generate_greedy(model, {256, 'a'}, 6);
  const int stop = free_run[3];  // the second generated token
  const std::vector<int> stopped = lab03::generate_greedy(model, {256, 'a'}, 6, stop);
  std::size_t first = 2;
  while (free_run[first] != stop) ++first;
  EXPECT_EQ(stopped, std::vector<int>(free_run.begin(),
                                      free_run.begin() + static_cast<std::ptrdiff_t>(first) + 1));
}

}  // namespace
