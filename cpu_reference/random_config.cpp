#include "cpu_reference/random_config.hpp"

#include <algorithm>

namespace lab::cpu {

ModelConfig random_config(Rng& rng, int max_hidden, int max_seq_len) {
  ModelConfig c;
  c.name = "random";
  c.head_dim = 16 + 2 * static_cast<int>(rng.below(57));  // even, 16..128
  const int group = 1 + static_cast<int>(rng.below(4));   // GQA ratio 1..4
  int kv_heads = 1 + static_cast<int>(rng.below(3));      // 1..3: 3 gives odd head counts
  while (kv_heads > 1 && kv_heads * group * c.head_dim > max_hidden) --kv_heads;
  c.num_kv_heads = kv_heads;
  c.num_heads = kv_heads * group;
  if (c.num_heads * c.head_dim > max_hidden) {  // shrink the head, keeping it even
    c.head_dim = std::max(2, (max_hidden / c.num_heads) & ~1);
  }
  c.hidden_size = c.num_heads * c.head_dim;
  c.intermediate_size = c.hidden_size * 2 + 1 +
                        static_cast<int>(rng.below(static_cast<std::uint64_t>(c.hidden_size)));
  c.num_layers = 1 + static_cast<int>(rng.below(3));
  c.vocab_size = 97 + static_cast<int>(rng.below(600));
  if (c.vocab_size % 8 == 0) ++c.vocab_size;
  c.max_seq_len = max_seq_len;
  const float thetas[] = {10000.0f, 100000.0f, 500000.0f};
  c.rope_theta = thetas[rng.below(3)];
  c.rms_norm_eps = rng.below(2) ? 1e-5f : 1e-6f;
  c.tie_word_embeddings = rng.below(2) == 1;
  validate(c);
  return c;
}

}  // namespace lab::cpu
