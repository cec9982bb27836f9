// Lab 12, student version. Replace each TODO(student) with your code; run
//   ctest --test-dir build -L lab -R Lab12
// until every test passes. exercises/12_tensor_parallel/README.md explains each step.
#include <stdexcept>

#include "lab.hpp"

namespace lab12 {

lab::TensorParallelShard plan_shard(const lab::ModelConfig& config, int world_size, int rank) {
  // TODO(student): validate the split (lab::validate_tensor_parallel), then give the rank its
  // query heads, its KV heads (or the one replicated KV head when Hkv < N) and its FFN columns.
  (void)config, (void)world_size, (void)rank;
  throw std::logic_error("not implemented: lab12::plan_shard");
}

std::vector<double> mlp_partial(const lab::ModelWeights& weights, int layer,
                                const lab::TensorParallelShard& shard, std::span<const float> x) {
  // TODO(student): for each of the rank's FFN columns f: g = gate[f]·x, u = up[f]·x,
  // a = silu(g)·u; add a times column f of down_proj to the output.
  (void)weights, (void)layer, (void)shard, (void)x;
  throw std::logic_error("not implemented: lab12::mlp_partial");
}

}  // namespace lab12
