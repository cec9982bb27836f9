#pragma once
// Helpers for the kernel tests: random host data, device round trips, comparisons through
// lab::compare with tolerances from lab::tolerance_for.
#include <gtest/gtest.h>

#include <span>
#include <vector>

#include "common/compare.hpp"
#include "common/random.hpp"
#include "cuda/buffer.hpp"
#include "cuda/kernels.hpp"
#include "gpu_test.hpp"

namespace lab::test {

inline std::vector<float> random_vector(Rng& rng, std::size_t n, double scale = 1.0) {
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(scale * rng.normal());
  return v;
}

/// Rounds through bf16 on the host (round to nearest even), so a reference sees what the GPU sees.
inline float round_bf16(float x) {
  return __bfloat162float(__float2bfloat16_rn(x));
}
inline std::vector<lab::cuda::bf16> to_bf16_host(std::span<const float> v) {
  std::vector<lab::cuda::bf16> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = __float2bfloat16_rn(v[i]);
  return out;
}

/// Expects `got` to match `ref` within `tol`, printing lab::summary on failure.
inline void expect_close(const std::vector<float>& ref, const std::vector<float>& got,
                         const Tolerance& tol, const std::string& what, std::size_t row = 0) {
  const CompareResult r = compare(ref, got, tol, row);
  EXPECT_TRUE(r.passed) << what << ": " << summary(r) << " (" << tol.reason << ")";
}

}  // namespace lab::test
