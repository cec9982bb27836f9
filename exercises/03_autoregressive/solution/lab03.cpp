// Lab 3, reference solution.
#include "lab.hpp"

namespace lab03 {

std::vector<int> generate_greedy(const lab::cpu::Transformer<float>& model, std::vector<int> prompt,
                                 int steps, int stop_id) {
  std::vector<int> tokens = std::move(prompt);
  for (int step = 0; step < steps; ++step) {
    const lab::cpu::Matrix<float> logits = model.forward(tokens);  // (len, V)
    Eigen::Index best = 0;
    logits.row(logits.rows() - 1).maxCoeff(&best);  // first maximum: lowest id on ties
    tokens.push_back(static_cast<int>(best));
    if (best == stop_id) break;
  }
  return tokens;
}

}  // namespace lab03
