// The Eigen model against a naive fp64 Llama forward written here from the HF formulas, loop by
// loop, sharing no code with cpu_reference/ (an independent reference, Appendix C).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/compare.hpp"
#include "common/cost_model.hpp"
#include "common/error.hpp"
#include "common/weights.hpp"
#include "cpu_reference/random_config.hpp"
#include "cpu_reference/transformer.hpp"

namespace {

// One thread: ctest runs tests side by side on small CI machines, and OpenMP threads that outnumber
// the cores spin-wait on each other. test_cpu_layers covers the threaded paths.
const bool single_threaded = [] {
  lab::cpu::set_num_threads(1);
  return true;
}();

using lab::ModelConfig;
using lab::ModelWeights;

// y[o] = Σ_i W[o, i] x[i] for an HF [out, in] weight.
std::vector<double> matvec(const lab::Tensor& w, const std::vector<double>& x) {
  const auto out = static_cast<std::size_t>(w.shape[0]), in = static_cast<std::size_t>(w.shape[1]);
  std::vector<double> y(out, 0.0);
  for (std::size_t o = 0; o < out; ++o)
    for (std::size_t i = 0; i < in; ++i) y[o] += static_cast<double>(w.data[o * in + i]) * x[i];
  return y;
}

std::vector<double> rmsnorm(const std::vector<double>& x, const lab::Tensor& g, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double inv = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + eps);
  std::vector<double> y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * static_cast<double>(g.data[i]);
  return y;
}

// HF: q' = q cos + rotate_half(q) sin, rotate_half(x) = cat(−x2, x1), cos/sin = cat(f, f).
void rope(std::vector<double>& x, int heads, int d, int pos, double theta) {
  for (int h = 0; h < heads; ++h) {
    std::vector<double> head(x.begin() + h * d, x.begin() + (h + 1) * d), rotated(d);
    for (int i = 0; i < d; ++i) rotated[i] = i < d / 2 ? -head[i + d / 2] : head[i - d / 2];
    for (int i = 0; i < d; ++i) {
      const double freq = std::pow(theta, -2.0 * (i % (d / 2)) / d);
      x[h * d + i] = head[i] * std::cos(pos * freq) + rotated[i] * std::sin(pos * freq);
    }
  }
}

// Naive teacher-forced logits, (n, V) flattened, in fp64. `causal` false: bidirectional.
std::vector<double> naive_forward(const ModelWeights& w, const std::vector<int>& tokens,
                                  bool causal = true) {
  const ModelConfig& c = w.config;
  const int n = static_cast<int>(tokens.size()), D = c.hidden_size, d = c.head_dim;
  std::vector<std::vector<double>> x(n);
  const auto& E = w.at("model.embed_tokens.weight");
  for (int t = 0; t < n; ++t)
    for (int i = 0; i < D; ++i) x[t].push_back(E.data[static_cast<std::size_t>(tokens[t] * D + i)]);
  for (int l = 0; l < c.num_layers; ++l) {
    auto W = [&](const char* s) -> const lab::Tensor& {
      return w.at(lab::layer_tensor_name(l, s));
    };
    std::vector<std::vector<double>> q(n), k(n), v(n);
    for (int t = 0; t < n; ++t) {
      const auto h = rmsnorm(x[t], W("input_layernorm.weight"), c.rms_norm_eps);
      q[t] = matvec(W("self_attn.q_proj.weight"), h);
      k[t] = matvec(W("self_attn.k_proj.weight"), h);
      v[t] = matvec(W("self_attn.v_proj.weight"), h);
      rope(q[t], c.num_heads, d, t, c.rope_theta);
      rope(k[t], c.num_kv_heads, d, t, c.rope_theta);
    }
    for (int t = 0; t < n; ++t) {
      std::vector<double> att(static_cast<std::size_t>(c.num_heads * d), 0.0);
      for (int h = 0; h < c.num_heads; ++h) {
        const int g = h / (c.num_heads / c.num_kv_heads);
        const int last = causal ? t : n - 1;
        std::vector<double> s(last + 1);
        double mx = -1e300, sum = 0;
        for (int j = 0; j <= last; ++j) {
          s[j] = 0;
          for (int i = 0; i < d; ++i) s[j] += q[t][h * d + i] * k[j][g * d + i];
          s[j] /= std::sqrt(static_cast<double>(d));
          mx = std::max(mx, s[j]);
        }
        for (int j = 0; j <= last; ++j) sum += (s[j] = std::exp(s[j] - mx));
        for (int j = 0; j <= last; ++j)
          for (int i = 0; i < d; ++i) att[h * d + i] += s[j] / sum * v[j][g * d + i];
      }
      const auto o = matvec(W("self_attn.o_proj.weight"), att);
      for (int i = 0; i < D; ++i) x[t][i] += o[i];
      const auto h2 = rmsnorm(x[t], W("post_attention_layernorm.weight"), c.rms_norm_eps);
      auto gate = matvec(W("mlp.gate_proj.weight"), h2);
      const auto up = matvec(W("mlp.up_proj.weight"), h2);
      for (std::size_t i = 0; i < gate.size(); ++i)
        gate[i] = gate[i] / (1 + std::exp(-gate[i])) * up[i];
      const auto down = matvec(W("mlp.down_proj.weight"), gate);
      for (int i = 0; i < D; ++i) x[t][i] += down[i];
    }
  }
  std::vector<double> logits;
  for (int t = 0; t < n; ++t) {
    const auto y =
        matvec(w.output_projection(), rmsnorm(x[t], w.at("model.norm.weight"), c.rms_norm_eps));
    logits.insert(logits.end(), y.begin(), y.end());
  }
  return logits;
}

std::vector<int> random_tokens(lab::Rng& rng, int n, int vocab) {
  std::vector<int> t(static_cast<std::size_t>(n));
  for (int& id : t) id = static_cast<int>(rng.below(static_cast<std::uint64_t>(vocab)));
  return t;
}

// fp64 vs fp64: the same bound as tolerance_for() with u = 2^-53 (DType has no fp64 entry).
lab::Tolerance fp64_tolerance(const ModelConfig& c) {
  const int depth = 2 * c.num_layers + 1;  // attention and MLP of each layer, then the output
  lab::Tolerance t = lab::tolerance_for(lab::DType::FP32, c.intermediate_size, depth);
  t.rel_l2 *= 0x1p-53 / lab::unit_roundoff(lab::DType::FP32);
  t.reason += ", rescaled to fp64's u = 1.1e-16";
  return t;
}
// fp32: the longest reduction is the MLP's F (or the context length, if longer), over 2L+1 stages.
lab::Tolerance fp32_tolerance(const ModelConfig& c, int n) {
  return lab::tolerance_for(lab::DType::FP32, std::max(c.intermediate_size, n),
                            2 * c.num_layers + 1);
}

void check_against_naive(const ModelWeights& w, const std::vector<int>& tokens) {
  const std::vector<double> ref = naive_forward(w, tokens);
  const auto got64 = lab::cpu::teacher_forced_logits_fp64(w, tokens);
  const auto r64 =
      lab::compare(std::span<const double>(ref), std::span<const double>(got64),
                   fp64_tolerance(w.config), static_cast<std::size_t>(w.config.vocab_size));
  EXPECT_TRUE(r64.passed) << lab::describe(w.config) << "\nfp64: " << lab::summary(r64);
  const std::vector<float> ref32(ref.begin(), ref.end());
  const auto got32 = lab::cpu::teacher_forced_logits(w, tokens);
  const auto r32 = lab::compare(std::span<const float>(ref32), std::span<const float>(got32),
                                fp32_tolerance(w.config, static_cast<int>(tokens.size())),
                                static_cast<std::size_t>(w.config.vocab_size));
  EXPECT_TRUE(r32.passed) << lab::describe(w.config) << "\nfp32: " << lab::summary(r32);
}

TEST(CpuModel, TinyMatchesNaiveReference) {
  const ModelWeights w = lab::random_weights(lab::preset("tiny"), 7);
  lab::Rng rng(1);
  check_against_naive(w, random_tokens(rng, 40, w.config.vocab_size));
}

TEST(CpuModel, RandomConfigsMatchNaiveReference) {
  lab::Rng rng(2024);
  for (int trial = 0; trial < 6; ++trial) {
    const ModelConfig c = lab::cpu::random_config(rng, 256);
    const ModelWeights w = lab::random_weights(c, 100 + static_cast<std::uint64_t>(trial));
    const int n = 1 + static_cast<int>(rng.below(48));
    check_against_naive(w, random_tokens(rng, n, c.vocab_size));
  }
}

TEST(CpuModel, TiedAndUntiedOutputProjection) {
  lab::ModelConfig c = lab::preset("tiny");
  for (bool tied : {false, true}) {
    c.tie_word_embeddings = tied;
    const ModelWeights w = lab::random_weights(c, 3);
    check_against_naive(w, {256, 72, 105, 33});
  }
}

TEST(CpuModel, BidirectionalMaskMatchesNaive) {
  const ModelWeights w = lab::random_weights(lab::preset("tiny"), 9);
  const std::vector<int> tokens = {256, 1, 2, 3, 4, 5, 6};
  const auto ref = naive_forward(w, tokens, /*causal=*/false);
  const auto got =
      lab::cpu::Transformer<double>(w).forward(tokens, lab::cpu::AttentionMask::Bidirectional);
  const auto r =
      lab::compare(std::span<const double>(ref),
                   std::span<const double>(got.data(), static_cast<std::size_t>(got.size())),
                   fp64_tolerance(w.config));
  EXPECT_TRUE(r.passed) << lab::summary(r);
}

TEST(CpuModel, CausalPrefixIsUnaffectedByLaterTokens) {
  // Position i may not see tokens after i: changing the last token must leave earlier rows alone.
  const ModelWeights w = lab::random_weights(lab::preset("tiny"), 5);
  const lab::cpu::Transformer<double> model(w);
  std::vector<int> a = {256, 10, 20, 30, 40}, b = a;
  b.back() = 99;
  const auto la = model.forward(a), lb = model.forward(b);
  EXPECT_EQ(la.topRows(4), lb.topRows(4));
  EXPECT_NE(la.row(4), lb.row(4));
}

TEST(CpuModel, BadInputIsAClearError) {
  const ModelWeights w = lab::random_weights(lab::preset("tiny"), 5);
  const lab::cpu::Transformer<float> model(w);
  EXPECT_THROW(model.forward(std::vector<int>{}), lab::Error);
  EXPECT_THROW(model.forward(std::vector<int>{1, 258}), lab::Error);
  EXPECT_THROW(model.forward(std::vector<int>{-1}), lab::Error);
  EXPECT_THROW(model.forward(std::vector<int>(257, 1)), lab::Error);  // > max_seq_len
  lab::cpu::KVCache<float> cache(w.config, 4);
  EXPECT_THROW(model.forward(std::vector<int>{1, 2, 3, 4, 5}, cache), lab::Error);
  EXPECT_EQ(cache.length(), 0);
  ModelWeights broken = w;
  broken.tensors.erase("model.norm.weight");
  EXPECT_THROW(lab::cpu::Transformer<float>{broken}, lab::Error);
}

TEST(CpuModel, KVCacheBytesFollowTheFormula) {
  const ModelConfig c = lab::preset("tiny");
  const lab::cpu::KVCache<float> cache(c, 100);
  EXPECT_EQ(cache.bytes(), 2LL * c.num_layers * 100 * c.num_kv_heads * c.head_dim * 4);
  EXPECT_EQ(cache.bytes(), 100 * lab::kv_cache_bytes_per_token(c, lab::DType::FP32));
}

}  // namespace
