// The decode step's fused kernels (cuda/gemv.cu: RMSNorm folded into the GEMV, RoPE and the KV
// append in the qkv GEMV's epilogue, SwiGLU in the gate_up GEMV's), each against a
// double-precision CPU loop of the separate operations, on shapes that are not multiples of the
// block; programmatic dependent launch against plain launches; and the decoder's fused step
// against its unfused one.
#include <cmath>
#include <cstring>

#include "common/weights.hpp"
#include "cuda/decoder.hpp"
#include "cuda/resources.hpp"
#include "kernel_test_util.hpp"

using namespace lab;
using namespace lab::cuda;
using lab::test::expect_close;
using lab::test::random_vector;

namespace {

constexpr float kEps = 1e-5f;
// The fused GEMVs' kernel families (the `family` argument).
constexpr GemvVersion kFamilies[] = {GemvVersion::V5Pdl, GemvVersion::V7Slab};

// n = x ⊙ g / sqrt(mean(x²) + eps), in double.
std::vector<double> reference_rmsnorm(const std::vector<float>& x, const std::vector<float>& g) {
  double ss = 0;
  for (float v : x) ss += double(v) * v;
  const double inv = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + kEps);
  std::vector<double> n(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) n[i] = x[i] * inv * g[i];
  return n;
}

double dot_row(const std::vector<float>& w, int row, const std::vector<double>& n) {
  double acc = 0;
  for (std::size_t c = 0; c < n.size(); ++c) acc += double(w[row * n.size() + c]) * n[c];
  return acc;
}

// Weights as the device stores them: bf16-rounded for T = bf16, so that the reference sees the
// same matrix and only the fp32 accumulation differs.
template <typename T>
std::vector<float> stored(std::vector<float> w) {
  if constexpr (sizeof(T) == 2)
    for (float& v : w) v = lab::test::round_bf16(v);
  return w;
}
template <typename T>
std::vector<T> to_device_type(const std::vector<float>& v) {
  if constexpr (sizeof(T) == 2)
    return lab::test::to_bf16_host(v);
  else
    return v;
}
template <typename T>
int cols_multiple() {
  return 16 / static_cast<int>(sizeof(T));
}

// `family`: V5Pdl for the v4-based kernels, V7Slab for the slab ones; both against one reference.
template <typename T>
void check_gemv_rmsnorm(std::uint64_t seed, GemvVersion family) {
  Rng rng(seed);
  const int big = 14336 + 8;  // 57 KB of staged fp32 x: past the 48 KB default, the opt-in path
  for (int trial = 0; trial < 6; ++trial) {
    const int rows = 1 + static_cast<int>(rng.below(700));
    const int cols = trial == 5 ? big : cols_multiple<T>() * (1 + static_cast<int>(rng.below(400)));
    const auto w = stored<T>(random_vector(rng, static_cast<std::size_t>(rows) * cols));
    const auto x = random_vector(rng, static_cast<std::size_t>(cols), 3.0);
    const auto g = random_vector(rng, static_cast<std::size_t>(cols));
    const auto wt = to_device_type<T>(w);
    DeviceBuffer<T> d_w{std::span<const T>(wt)};
    DeviceBuffer<float> d_x{std::span<const float>(x)}, d_g{std::span<const float>(g)};
    DeviceBuffer<float> d_y(static_cast<std::size_t>(rows));
    d_y.fill_bytes(0xFF);
    ASSERT_TRUE(decode_gemv_fusable(d_w.get(), d_x.get(), cols));
    gemv_rmsnorm<T>(d_w.get(), d_x.get(), d_g.get(), kEps, d_y.get(), rows, cols, nullptr, false,
                    family);
    const auto n = reference_rmsnorm(x, g);
    std::vector<float> ref(static_cast<std::size_t>(rows));
    for (int r = 0; r < rows; ++r) ref[r] = static_cast<float>(dot_row(w, r, n));
    expect_close(ref, d_y.download(), tolerance_for(DType::FP32, cols),
                 "gemv_rmsnorm " + std::to_string(rows) + "x" + std::to_string(cols) + " " +
                     to_string(family));
  }
}

template <typename T>
void check_gemv_rmsnorm_swiglu(std::uint64_t seed, GemvVersion family) {
  Rng rng(seed);
  for (int trial = 0; trial < 5; ++trial) {
    // Trial 0: wide enough that the slab kernels hold two units a slab.
    const int ffn = trial == 0 ? 2200 : 1 + static_cast<int>(rng.below(500));
    const int cols =
        trial == 0 ? 4096 : cols_multiple<T>() * (1 + static_cast<int>(rng.below(300)));
    const auto w = stored<T>(random_vector(rng, static_cast<std::size_t>(2 * ffn) * cols));
    const auto x = random_vector(rng, static_cast<std::size_t>(cols), 2.0);
    const auto g = random_vector(rng, static_cast<std::size_t>(cols));
    const auto wt = to_device_type<T>(w);
    DeviceBuffer<T> d_w{std::span<const T>(wt)};
    DeviceBuffer<float> d_x{std::span<const float>(x)}, d_g{std::span<const float>(g)};
    DeviceBuffer<float> d_act(static_cast<std::size_t>(ffn));
    d_act.fill_bytes(0xFF);
    gemv_rmsnorm_swiglu<T>(d_w.get(), d_x.get(), d_g.get(), kEps, d_act.get(), ffn, cols, nullptr,
                           false, family);
    const auto n = reference_rmsnorm(x, g);
    std::vector<float> ref(static_cast<std::size_t>(ffn));
    for (int i = 0; i < ffn; ++i) {
      const double gate = dot_row(w, i, n), up = dot_row(w, ffn + i, n);
      ref[i] = static_cast<float>(gate / (1 + std::exp(-gate)) * up);
    }
    // silu(g)·u: the product's relative error is the two dot products' plus a few roundings.
    expect_close(ref, d_act.download(), tolerance_for(DType::FP32, cols),
                 "gemv_rmsnorm_swiglu F=" + std::to_string(ffn) + " cols=" + std::to_string(cols) +
                     " " + to_string(family));
  }
}

template <typename T>
void check_gemv_rmsnorm_qkv_rope(std::uint64_t seed, GemvVersion family) {
  Rng rng(seed);
  for (int trial = 0; trial < 6; ++trial) {
    // Trial 0: Llama-3-8B's attention shape (32 heads, 8 KV heads, d = 128, 4096 columns), where
    // the slab kernels hold 2 pairs a slab (bf16); the others small and odd.
    const int Hkv = trial == 0 ? 8 : 1 + static_cast<int>(rng.below(4)),
              H = trial == 0 ? 32 : Hkv * (1 + static_cast<int>(rng.below(3)));
    const int d = trial == 0 ? 128 : 2 * (1 + static_cast<int>(rng.below(40)));
    const int cols =
        trial == 0 ? 4096 : cols_multiple<T>() * (1 + static_cast<int>(rng.below(200)));
    const int qd = H * d, kvd = Hkv * d, rows = qd + 2 * kvd, capacity = 50;
    const int pos = static_cast<int>(rng.below(capacity));
    const double theta = 10000.0;
    const auto w = stored<T>(random_vector(rng, static_cast<std::size_t>(rows) * cols));
    const auto x = random_vector(rng, static_cast<std::size_t>(cols), 2.0);
    const auto g = random_vector(rng, static_cast<std::size_t>(cols));
    std::vector<double> freq(static_cast<std::size_t>(d / 2));
    for (int i = 0; i < d / 2; ++i) freq[i] = std::pow(theta, -2.0 * i / d);
    const auto wt = to_device_type<T>(w);
    DeviceBuffer<T> d_w{std::span<const T>(wt)};
    DeviceBuffer<float> d_x{std::span<const float>(x)}, d_g{std::span<const float>(g)};
    DeviceBuffer<double> d_freq{std::span<const double>(freq)};
    const std::vector<int> pos_host{pos};
    DeviceBuffer<int> d_pos{std::span<const int>(pos_host)};
    DeviceBuffer<float> d_q(static_cast<std::size_t>(qd));
    DeviceBuffer<T> d_kc(static_cast<std::size_t>(capacity) * kvd),
        d_vc(static_cast<std::size_t>(capacity) * kvd);
    d_q.fill_bytes(0xFF), d_kc.fill_bytes(0xFF), d_vc.fill_bytes(0xFF);
    gemv_rmsnorm_qkv_rope<T>(d_w.get(), d_x.get(), d_g.get(), kEps, d_q.get(), d_kc.get(),
                             d_vc.get(), H, Hkv, d, cols, d_freq.get(), d_pos.get(), nullptr, false,
                             family);
    // Reference: the separate operations, in double: norm, GEMV, RoPE at `pos`.
    const auto n = reference_rmsnorm(x, g);
    std::vector<double> y(static_cast<std::size_t>(rows));
    for (int r = 0; r < rows; ++r) y[r] = dot_row(w, r, n);
    for (int head = 0; head < H + Hkv; ++head)  // q heads, then k heads
      for (int i = 0; i < d / 2; ++i) {
        const double a = y[head * d + i], b = y[head * d + i + d / 2], angle = pos * freq[i];
        y[head * d + i] = a * std::cos(angle) - b * std::sin(angle);
        y[head * d + i + d / 2] = b * std::cos(angle) + a * std::sin(angle);
      }
    const std::vector<float> q_ref(y.begin(), y.begin() + qd);
    const std::vector<float> k_ref(y.begin() + qd, y.begin() + qd + kvd);
    const std::vector<float> v_ref(y.begin() + qd + kvd, y.end());
    const std::string what = "qkv_rope H=" + std::to_string(H) + " Hkv=" + std::to_string(Hkv) +
                             " d=" + std::to_string(d) + " cols=" + std::to_string(cols) + " " +
                             to_string(family);
    expect_close(q_ref, d_q.download(), tolerance_for(DType::FP32, cols), what + " q");
    // The caches: row `pos` holds k and v (rounded once to T); every other row is untouched.
    const Tolerance cache_tol =
        sizeof(T) == 2 ? storage_tolerance(DType::BF16, 1) : tolerance_for(DType::FP32, cols);
    for (auto [buffer, ref, name] : {std::tuple{&d_kc, &k_ref, "k"}, {&d_vc, &v_ref, "v"}}) {
      const auto cache = buffer->download();
      std::vector<float> row(static_cast<std::size_t>(kvd));
      for (int c = 0; c < kvd; ++c) row[c] = static_cast<float>(cache[pos * kvd + c]);
      expect_close(*ref, row, cache_tol, what + " " + name + " cache row");
      T poison;
      std::memset(&poison, 0xFF, sizeof(T));
      for (int r = 0; r < capacity; ++r) {
        if (r == pos) continue;
        for (int c = 0; c < kvd; ++c)
          ASSERT_EQ(std::memcmp(&cache[r * kvd + c], &poison, sizeof(T)), 0)
              << what << ": " << name << " cache row " << r << " was written (pos " << pos << ")";
      }
    }
  }
}

// A decoder configuration whose sizes are multiples of 8 (whole 16-byte bf16 vectors: the fused
// kernels and split-KV v3 apply) but of no block size.
ModelConfig odd_config() {
  ModelConfig odd = preset("tiny");
  odd.name = "odd";
  odd.num_heads = 6, odd.num_kv_heads = 2, odd.head_dim = 24, odd.hidden_size = 144;
  odd.intermediate_size = 200, odd.num_layers = 3, odd.vocab_size = 300;
  return odd;
}

// Two decoders' logits a step apart, when their kernels differ only in summation order (and, in
// bf16, in which side of a rounding a k or v lands on).
Tolerance step_tolerance(const ModelConfig& c, DecoderPrecision precision) {
  return precision == DecoderPrecision::FP32
             ? tolerance_for(DType::FP32, std::max(c.hidden_size, c.intermediate_size),
                             c.num_layers + 1)
             // bf16: a k or v may round to the neighbouring bf16 value in one and not the other.
             : storage_tolerance(DType::BF16, c.num_layers + 1);
}

// Feeds decoders a and b the same random prompt of `prompt_length` tokens, then 12 random tokens a
// step at a time, and expects their logits to agree within step_tolerance at every step (it stops
// at the first step that does not); then expects b's greedy tokens to be the same with the CUDA
// graph (PDL edges inside) and without. Returns the prompt.
std::vector<int> expect_same_steps(Decoder& a, Decoder& b, const ModelConfig& c,
                                   DecoderPrecision precision, Rng& rng, int prompt_length) {
  std::vector<int> prompt(static_cast<std::size_t>(prompt_length));
  for (int& t : prompt) t = static_cast<int>(rng.below(static_cast<std::uint64_t>(c.vocab_size)));
  a.forward(prompt), b.forward(prompt);
  const Tolerance tol = step_tolerance(c, precision);
  for (int step = 0; step < 12; ++step) {
    const int token = static_cast<int>(rng.below(static_cast<std::uint64_t>(c.vocab_size)));
    const auto la = a.forward(std::span<const int>(&token, 1));
    const auto lb = b.forward(std::span<const int>(&token, 1));
    const auto r = compare(la, lb, tol);
    EXPECT_TRUE(r.passed) << c.name << " " << to_string(precision) << " step " << step << ": "
                          << summary(r);
    if (!r.passed) return prompt;
  }
  b.reset();
  const auto stream_tokens = b.generate_greedy(prompt, 10, false);
  b.reset();
  EXPECT_EQ(b.generate_greedy(prompt, 10, true), stream_tokens) << c.name;
  return prompt;
}

}  // namespace

TEST(Kernels, GemvRmsnormMatchesNormThenGemv) {
  LAB_REQUIRE_GPU();
  for (GemvVersion family : kFamilies) {
    check_gemv_rmsnorm<float>(41, family);
    check_gemv_rmsnorm<bf16>(42, family);
  }
}

TEST(Kernels, GemvRmsnormSwigluMatchesSeparateOps) {
  LAB_REQUIRE_GPU();
  for (GemvVersion family : kFamilies) {
    check_gemv_rmsnorm_swiglu<float>(43, family);
    check_gemv_rmsnorm_swiglu<bf16>(44, family);
  }
}

TEST(Kernels, GemvRmsnormQkvRopeAppendMatchesSeparateOps) {
  LAB_REQUIRE_GPU();
  for (GemvVersion family : kFamilies) {
    check_gemv_rmsnorm_qkv_rope<float>(45, family);
    check_gemv_rmsnorm_qkv_rope<bf16>(46, family);
  }
}

TEST(Kernels, DecodeGemvFusableNeedsWholeVectors) {
  LAB_REQUIRE_GPU();
  DeviceBuffer<bf16> w(64);
  DeviceBuffer<float> x(64);
  EXPECT_TRUE(decode_gemv_fusable(w.get(), x.get(), 64));
  EXPECT_FALSE(decode_gemv_fusable(w.get(), x.get(), 60)) << "60 bf16 is not whole 16-byte rows";
  EXPECT_FALSE(decode_gemv_fusable(w.get() + 1, x.get(), 64)) << "misaligned rows";
  EXPECT_THROW(gemv_rmsnorm<bf16>(w.get(), x.get(), x.get(), kEps, x.get(), 1, 60, nullptr),
               lab::Error);
}

// A chain of dependent GEMVs launched with PDL must give bit for bit what plain launches give:
// each kernel's wait_for_previous_kernel() must hold back every read of its predecessor's output.
// (Without the wait, a kernel reads the previous vector while it is still being written.) With
// v5 and the v4-based norm GEMV, and with the v7 slab kernels, whose bulk copies start before the
// wait.
TEST(Kernels, ProgrammaticDependentLaunchChainMatchesPlainLaunches) {
  LAB_REQUIRE_GPU();
  Rng rng(47);
  const int D = 1024, links = 24;
  const auto w = lab::test::to_bf16_host(random_vector(rng, static_cast<std::size_t>(D) * D, 0.03));
  const auto g = random_vector(rng, static_cast<std::size_t>(D));
  const auto x0 = random_vector(rng, static_cast<std::size_t>(D));
  DeviceBuffer<bf16> d_w{std::span<const bf16>(w)};
  DeviceBuffer<float> d_g{std::span<const float>(g)};
  Stream stream;
  for (GemvVersion version : {GemvVersion::V5Pdl, GemvVersion::V7Slab}) {
    std::vector<std::vector<float>> results;
    for (bool pdl : {false, true}) {
      DeviceBuffer<float> a{std::span<const float>(x0)}, b(static_cast<std::size_t>(D));
      for (int i = 0; i < links; ++i) {  // a → b → a ..., alternating the two fused-norm forms
        gemv_rmsnorm<bf16>(d_w.get(), a.get(), d_g.get(), kEps, b.get(), D, D, stream.get(), pdl,
                           version);
        gemv<bf16>(version, d_w.get(), b.get(), a.get(), D, D, true, stream.get(), pdl);
      }
      stream.synchronize();
      results.push_back(a.download());
    }
    EXPECT_EQ(results[0], results[1]) << to_string(version);
  }
}

// The decoder's fused, PDL-launched decode step against its unfused, plainly launched one, on a
// configuration whose sizes are multiples of 8 but not of any block (so the fused path is taken)
// and on tiny; fp32 and bf16; then the profile of one step has the expected kernels.
TEST(Decoder, FusedDecodeStepMatchesUnfused) {
  LAB_REQUIRE_GPU();
  const ModelConfig odd = odd_config();
  Rng rng(48);
  for (const ModelConfig& c : {preset("tiny"), odd})
    for (DecoderPrecision precision : {DecoderPrecision::FP32, DecoderPrecision::BF16}) {
      const ModelWeights weights = random_weights(c, 49);
      DecoderOptions plain{precision, 64};
      plain.fuse = false, plain.pdl = false, plain.gemv = GemvVersion::V3Vector16;
      DecoderOptions fused{precision, 64};  // the defaults: fused, PDL, v5
      Decoder a(weights, plain), b(weights, fused);
      const std::vector<int> prompt = expect_same_steps(a, b, c, precision, rng, 7);
      if (HasFailure()) return;
      // One step's kernels (split-KV v2 here: d % 8 == 0, one attention kernel): 5 a layer fused
      // (qkv, attention, o, gate_up, down) + embedding, lm_head, advance, argmax; 11 a layer
      // unfused + final_norm.
      b.reset(), a.reset();
      b.forward(prompt), a.forward(prompt);
      for (bool graph : {false, true}) {
        int launches_fused = 0, launches_plain = 0;
        for (const auto& k : b.profile_decode_step(3, graph)) {
          launches_fused += k.launches;
          EXPECT_GT(k.seconds, 0.0) << k.name;
        }
        for (const auto& k : a.profile_decode_step(3, graph)) launches_plain += k.launches;
        EXPECT_EQ(launches_fused, 5 * c.num_layers + 4) << c.name << " graph=" << graph;
        EXPECT_EQ(launches_plain, 11 * c.num_layers + 5) << c.name << " graph=" << graph;
      }
      EXPECT_EQ(b.length(), static_cast<int>(prompt.size())) << "profiling rolls the cache back";
    }
}

// The decode step on v7's slab kernels (every GEMV: qkv, o, gate_up, down, lm_head) against the
// default one (v4-based fused GEMVs, v5 for o and down), fp32 and bf16, step by step, then greedy
// with and without the graph. The two differ only in the order of each dot product's sums.
TEST(Decoder, SlabDecodeStepMatchesDefault) {
  LAB_REQUIRE_GPU();
  Rng rng(53);
  for (const ModelConfig& c : {preset("tiny"), odd_config()})
    for (DecoderPrecision precision : {DecoderPrecision::FP32, DecoderPrecision::BF16}) {
      const ModelWeights weights = random_weights(c, 54);
      DecoderOptions slab{precision, 64};
      slab.gemv = GemvVersion::V7Slab;
      Decoder a(weights, DecoderOptions{precision, 64}), b(weights, slab);
      expect_same_steps(a, b, c, precision, rng, 9);
    }
}

// Split-KV v4 is v3 plus L2 prefetches of o_proj's weights: a hint to the memory system, so the
// logits must equal v3's bit for bit, step after step, with and without the graph.
TEST(Decoder, L2PrefetchingAttentionChangesNoBit) {
  LAB_REQUIRE_GPU();
  const ModelConfig odd = odd_config();
  Rng rng(50);
  for (const ModelConfig& c : {preset("tiny"), odd}) {
    const ModelWeights weights = random_weights(c, 51);
    DecoderOptions v3{DecoderPrecision::BF16, 64}, v4{DecoderPrecision::BF16, 64};
    v3.split_kv_version = 3, v4.split_kv_version = 4;
    Decoder a(weights, v3), b(weights, v4);
    std::vector<int> prompt(9);
    for (int& t : prompt) t = static_cast<int>(rng.below(static_cast<std::uint64_t>(c.vocab_size)));
    a.forward(prompt), b.forward(prompt);
    for (int step = 0; step < 8; ++step) {
      const int token = static_cast<int>(rng.below(static_cast<std::uint64_t>(c.vocab_size)));
      ASSERT_EQ(a.forward(std::span<const int>(&token, 1)),
                b.forward(std::span<const int>(&token, 1)))
          << c.name << " step " << step;
    }
    a.reset(), b.reset();
    EXPECT_EQ(a.generate_greedy(prompt, 10, true), b.generate_greedy(prompt, 10, true)) << c.name;
  }
}

// Chunked prefill: the prompt in chunks of c tokens, each attending to the cache the earlier
// chunks filled, against one call. c = 1 runs the prompt through the decode step's kernels; a
// chunk longer than the prompt is one call. fp32: within the tolerance of two summation orders;
// bf16: the one-call prefill rounds its GEMMs' inputs to bf16, the GEMVs of c = 1 do not, so the
// storage tolerance. Greedy continuations must agree as well; and a prompt longer than max_prefill
// (refused in one call) runs in chunks.
TEST(Decoder, ChunkedPrefillMatchesOneCall) {
  LAB_REQUIRE_GPU();
  const ModelConfig odd = odd_config();
  Rng rng(52);
  for (const ModelConfig& c : {preset("tiny"), odd})
    for (DecoderPrecision precision : {DecoderPrecision::FP32, DecoderPrecision::BF16}) {
      const ModelWeights weights = random_weights(c, 53);
      std::vector<int> prompt(13);
      for (int& t : prompt)
        t = static_cast<int>(rng.below(static_cast<std::uint64_t>(c.vocab_size)));
      Decoder whole(weights, DecoderOptions{precision, 64});
      const auto expected = whole.forward(prompt, /*all_logits=*/true);
      whole.reset();
      const auto expected_tokens = whole.generate_greedy(prompt, 8, true);
      const Tolerance tol = precision == DecoderPrecision::FP32
                                ? tolerance_for(DType::FP32, c.intermediate_size, c.num_layers + 1)
                                : storage_tolerance(DType::BF16, c.num_layers + 1);
      for (int chunk : {1, 3, 5, 20}) {
        DecoderOptions options{precision, 64};
        options.prefill_chunk = chunk;
        options.max_prefill = chunk;  // room for one chunk, not the prompt (chunk < 13)
        Decoder chunked(weights, options);
        const auto got = chunked.forward(prompt, /*all_logits=*/true);
        ASSERT_EQ(got.size(), expected.size());
        const auto r = compare(expected, got, tol);
        EXPECT_TRUE(r.passed) << c.name << " " << to_string(precision) << " chunk " << chunk << ": "
                              << summary(r);
        EXPECT_EQ(chunked.length(), static_cast<int>(prompt.size()));
        // Greedy tokens: where both prefills round the same inputs (all but bf16 with chunk 1,
        // whose logits differ by more than a near-tie may take).
        if (precision == DecoderPrecision::BF16 && chunk == 1) continue;
        chunked.reset();
        EXPECT_EQ(chunked.generate_greedy(prompt, 8, true), expected_tokens)
            << c.name << " " << to_string(precision) << " chunk " << chunk;
      }
    }
}
