// Lab 12 on the CPU: the shard plan against the course's (common/tensor_parallel.cpp) and against
// the properties any correct split has, and the MLP's partial sums against the whole MLP computed
// here in double.
#include <gtest/gtest.h>

#include <cmath>

#include "common/error.hpp"
#include "common/random.hpp"
#include "common/tensor_parallel.hpp"
#include "cpu_reference/random_config.hpp"
#include "lab.hpp"

namespace {

std::vector<lab::ModelConfig> configs() {
  std::vector<lab::ModelConfig> out;
  for (const char* name : {"tiny", "smollm2-135m", "llama2-7b", "llama3-8b", "llama2-70b"})
    out.push_back(lab::preset(name));
  lab::Rng rng(12);
  for (int i = 0; i < 20; ++i) out.push_back(lab::cpu::random_config(rng));
  return out;
}

TEST(Lab12, PlanMatchesTheCourseAndCoversEveryHeadAndColumnOnce) {
  for (const lab::ModelConfig& c : configs())
    for (int n = 1; n <= 8; ++n) {
      SCOPED_TRACE(c.name + " over " + std::to_string(n) + " ranks");
      bool splits = true;
      try {
        lab::validate_tensor_parallel(c, n);
      } catch (const lab::Error&) {
        splits = false;
      }
      if (!splits) {
        EXPECT_THROW(lab12::plan_shard(c, n, 0), lab::Error);
        continue;
      }
      std::vector<int> q_owner(static_cast<std::size_t>(c.num_heads), 0);
      std::vector<int> ffn_owner(static_cast<std::size_t>(c.intermediate_size), 0);
      for (int r = 0; r < n; ++r) {
        const lab::TensorParallelShard s = lab12::plan_shard(c, n, r);
        const lab::TensorParallelShard e = lab::tensor_parallel_shard(c, n, r);
        EXPECT_EQ(s.rank, r);
        EXPECT_EQ(s.world_size, n);
        EXPECT_EQ(s.first_q_head, e.first_q_head);
        EXPECT_EQ(s.q_heads, e.q_heads);
        EXPECT_EQ(s.first_kv_head, e.first_kv_head);
        EXPECT_EQ(s.kv_heads, e.kv_heads);
        EXPECT_EQ(s.kv_replicated, e.kv_replicated);
        EXPECT_EQ(s.first_ffn, e.first_ffn);
        EXPECT_EQ(s.ffn, e.ffn);
        for (int h = s.first_q_head; h < s.first_q_head + s.q_heads && h < c.num_heads; ++h) {
          ++q_owner[static_cast<std::size_t>(h)];
          const int kv =
              h / c.group_size();  // attention needs no communication: its KV head is local
          EXPECT_TRUE(kv >= s.first_kv_head && kv < s.first_kv_head + s.kv_heads) << "q head " << h;
        }
        for (int f = s.first_ffn; f < s.first_ffn + s.ffn && f < c.intermediate_size; ++f)
          ++ffn_owner[static_cast<std::size_t>(f)];
      }
      EXPECT_EQ(q_owner, std::vector<int>(q_owner.size(), 1)) << "every query head on one rank";
      EXPECT_EQ(ffn_owner, std::vector<int>(ffn_owner.size(), 1)) << "every FFN column on one rank";
    }
}

// The whole MLP for one token, in double: down · (silu(gate x) ⊙ up x).
std::vector<double> whole_mlp(const lab::ModelWeights& w, int layer, const std::vector<float>& x) {
  const auto D = static_cast<std::size_t>(w.config.hidden_size);
  const auto F = static_cast<std::size_t>(w.config.intermediate_size);
  const auto& gate = w.at(lab::layer_tensor_name(layer, "mlp.gate_proj.weight")).data;
  const auto& up = w.at(lab::layer_tensor_name(layer, "mlp.up_proj.weight")).data;
  const auto& down = w.at(lab::layer_tensor_name(layer, "mlp.down_proj.weight")).data;
  std::vector<double> a(F), y(D, 0.0);
  for (std::size_t f = 0; f < F; ++f) {
    double g = 0, u = 0;
    for (std::size_t i = 0; i < D; ++i)
      g += double(gate[f * D + i]) * x[i], u += double(up[f * D + i]) * x[i];
    a[f] = g / (1 + std::exp(-g)) * u;
  }
  for (std::size_t o = 0; o < D; ++o)
    for (std::size_t f = 0; f < F; ++f) y[o] += double(down[o * F + f]) * a[f];
  return y;
}

double rel_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    num += (a[i] - b[i]) * (a[i] - b[i]), den += b[i] * b[i];
  return std::sqrt(num / den);
}

TEST(Lab12, MlpPartialsSumToTheWholeMlp) {
  const lab::ModelWeights w = lab::random_weights(lab::preset("tiny"), 1212);
  lab::Rng rng(13);
  std::vector<float> x(static_cast<std::size_t>(w.config.hidden_size));
  for (float& v : x) v = static_cast<float>(rng.normal());
  for (int layer = 0; layer < w.config.num_layers; ++layer) {
    const std::vector<double> whole = whole_mlp(w, layer, x);
    for (int n : {1, 2, 4}) {
      SCOPED_TRACE("layer " + std::to_string(layer) + ", " + std::to_string(n) + " ranks");
      std::vector<double> sum(whole.size(), 0.0);
      for (int r = 0; r < n; ++r) {
        const auto part =
            lab12::mlp_partial(w, layer, lab::tensor_parallel_shard(w.config, n, r), x);
        ASSERT_EQ(part.size(), whole.size());
        for (std::size_t i = 0; i < sum.size(); ++i) sum[i] += part[i];
        // A partial is a partial: with several ranks no rank alone holds the answer.
        if (n > 1) {
          EXPECT_GT(rel_diff(part, whole), 1e-3) << "rank " << r;
        }
      }
      EXPECT_LT(rel_diff(sum, whole), 1e-12) << "the all-reduce (sum) must give the whole MLP";
    }
  }
}

}  // namespace
