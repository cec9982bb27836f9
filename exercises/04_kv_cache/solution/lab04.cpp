// Lab 4, reference solution.
#include <algorithm>
#include <cmath>
#include <string>

#include "common/error.hpp"
#include "lab.hpp"

namespace lab04 {

void append(LayerCache& cache, std::span<const float> key, std::span<const float> value) {
  lab::require(cache.length < cache.capacity,
               "KV cache full (" + std::to_string(cache.capacity) + " tokens)");
  const auto width = static_cast<std::size_t>(cache.kv_dim);
  lab::require(key.size() == width && value.size() == width, "key/value width != kv_dim");
  const std::size_t row = static_cast<std::size_t>(cache.length) * width;
  std::copy(key.begin(), key.end(), cache.keys.begin() + static_cast<std::ptrdiff_t>(row));
  std::copy(value.begin(), value.end(), cache.values.begin() + static_cast<std::ptrdiff_t>(row));
  ++cache.length;
}

std::vector<float> decode_attention(std::span<const float> query, const LayerCache& cache,
                                    int num_heads, int num_kv_heads, int head_dim) {
  const auto d = static_cast<std::size_t>(head_dim), width = static_cast<std::size_t>(cache.kv_dim);
  const int group = num_heads / num_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  std::vector<float> out(static_cast<std::size_t>(num_heads) * d, 0.0f);
  for (int h = 0; h < num_heads; ++h) {
    const std::size_t qo = static_cast<std::size_t>(h) * d;
    const std::size_t ko = static_cast<std::size_t>(h / group) * d;
    std::vector<float> s(static_cast<std::size_t>(cache.length));
    for (std::size_t j = 0; j < s.size(); ++j) {
      float dot = 0;
      for (std::size_t c = 0; c < d; ++c) dot += query[qo + c] * cache.keys[j * width + ko + c];
      s[j] = dot * scale;
    }
    const float m = *std::max_element(s.begin(), s.end());
    float sum = 0;
    for (float& e : s) sum += (e = std::exp(e - m));
    for (std::size_t j = 0; j < s.size(); ++j)
      for (std::size_t c = 0; c < d; ++c)
        out[qo + c] += s[j] / sum * cache.values[j * width + ko + c];
  }
  return out;
}

}  // namespace lab04
