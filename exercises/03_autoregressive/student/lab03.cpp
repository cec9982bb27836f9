// Lab 3, student version. Replace the TODO(student) with your code; run
//   ctest --test-dir build -L lab -R Lab03
// until every test passes. exercises/03_autoregressive/README.md explains each step.
#include <stdexcept>

#include "lab.hpp"

namespace lab03 {

std::vector<int> generate_greedy(const lab::cpu::Transformer<float>& model, std::vector<int> prompt,
                                 int steps, int stop_id) {
  // TODO(student): loop `steps` times: logits = model.forward(tokens), argmax of the last row,
  // append it, stop after stop_id.
  (void)model, (void)prompt, (void)steps, (void)stop_id;
  throw std::logic_error("not implemented: lab03::generate_greedy");
}

}  // namespace lab03
