#pragma once
/// \file
/// \brief Lab 4 interface (frozen): appending to one layer's KV cache and one decode step of
/// grouped-query attention over it.

#include <span>
#include <vector>

/// Lab 4: the KV cache.
namespace lab04 {

/// One layer's cache: `capacity` rows of keys and of values, each kv_dim = H_kv · d wide,
/// row-major; rows [0, length) are valid.
struct LayerCache {
  int capacity = 0;
  int kv_dim = 0;
  int length = 0;
  std::vector<float> keys, values;  ///< capacity · kv_dim each, allocated up front

  LayerCache(int capacity_, int kv_dim_)
      : capacity(capacity_),
        kv_dim(kv_dim_),
        keys(static_cast<std::size_t>(capacity_) * static_cast<std::size_t>(kv_dim_)),
        values(keys.size()) {}
};

/// Writes one token's key and value (kv_dim each) into row `length` and advances it. Throws
/// lab::Error when the cache is full or a size is wrong.
void append(LayerCache& cache, std::span<const float> key, std::span<const float> value);

/// Attention of one new token's query (H · d) over every cached row (the token itself is already
/// appended). Query head h reads key/value head h / (H / H_kv). Returns H · d.
std::vector<float> decode_attention(std::span<const float> query, const LayerCache& cache,
                                    int num_heads, int num_kv_heads, int head_dim);

}  // namespace lab04
