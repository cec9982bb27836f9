#pragma once
// Shared by the chain tests (chapter N against chapter N-1) on the CPU and the GPU.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "common/compare.hpp"
#include "common/model_config.hpp"
#include "common/random.hpp"

namespace lab::testing {

/// `n` token ids drawn uniformly from the vocabulary.
inline std::vector<int> random_tokens(Rng& rng, int n, int vocab) {
  std::vector<int> t(static_cast<std::size_t>(n));
  for (int& id : t) id = static_cast<int>(rng.below(static_cast<std::uint64_t>(vocab)));
  return t;
}

/// Two fp32 paths over the same math that sum in a different order (GEMM vs GEMV, blocked
/// differently): the longest reduction (F or the context) over the 2L + 1 dependent stages
/// (attention and MLP of each layer, then the logits) bounds their difference.
inline Tolerance chain_tolerance(const ModelConfig& c, std::size_t context) {
  return tolerance_for(
      DType::FP32, std::max<std::int64_t>(c.intermediate_size, static_cast<std::int64_t>(context)),
      2 * c.num_layers + 1);
}

}  // namespace lab::testing
