// Lab 5, student version. Replace each TODO(student) with your code; run
//   ctest --test-dir build -L lab -R Lab05
// until every test passes. exercises/05_sampling_and_metrics/README.md explains each step.
#include <stdexcept>

#include "lab.hpp"

namespace lab05 {

std::vector<int> top_p_filter(std::span<const double> probs, double p) {
  // TODO(student): sort ids by probability (ties: lowest id first), keep them while the mass kept
  // so far is below p times the total.
  (void)probs, (void)p;
  throw std::logic_error("not implemented: lab05::top_p_filter");
}

int sample_with_temperature(std::span<const float> logits, double temperature, double u) {
  // TODO(student): softmax of logits / temperature (shift by the max first), then walk the ids
  // from most to least probable until the cumulative probability exceeds u.
  (void)logits, (void)temperature, (void)u;
  throw std::logic_error("not implemented: lab05::sample_with_temperature");
}

}  // namespace lab05
