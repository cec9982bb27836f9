// Lab 2, reference solution.
#include <algorithm>
#include <cmath>

#include "lab.hpp"

namespace lab02 {

std::vector<float> rms_norm(std::span<const float> x, std::span<const float> gain, float eps) {
  float sum_squares = 0;
  for (float v : x) sum_squares += v * v;
  const float inv_rms = 1.0f / std::sqrt(sum_squares / static_cast<float>(x.size()) + eps);
  std::vector<float> y(x.size());
  for (std::size_t j = 0; j < x.size(); ++j) y[j] = x[j] * inv_rms * gain[j];
  return y;
}

std::vector<float> causal_attention(std::span<const float> q, std::span<const float> k,
                                    std::span<const float> v, int n, int d) {
  const auto D = static_cast<std::size_t>(d);
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  std::vector<float> out(static_cast<std::size_t>(n) * D, 0.0f);
  for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
    std::vector<float> s(i + 1);  // keys 0..i: the causal mask
    for (std::size_t j = 0; j <= i; ++j) {
      float dot = 0;
      for (std::size_t c = 0; c < D; ++c) dot += q[i * D + c] * k[j * D + c];
      s[j] = dot * scale;
    }
    const float m = *std::max_element(s.begin(), s.end());
    float sum = 0;
    for (float& e : s) sum += (e = std::exp(e - m));
    for (std::size_t j = 0; j <= i; ++j)
      for (std::size_t c = 0; c < D; ++c) out[i * D + c] += s[j] / sum * v[j * D + c];
  }
  return out;
}

}  // namespace lab02
