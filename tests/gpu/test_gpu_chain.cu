// The chain of GPU chapters, each against the one before: 06 (naive CUDA) ↔ 02 (CPU teacher
// forcing), 07 (cuBLAS fp32/TF32/bf16) ↔ 06, 08 (KV-cache decoder) ↔ 04 (CPU KV cache), on the
// tiny preset and on random configurations.
// ctest-labels: chapter
#include <gtest/gtest.h>

#include <numeric>

#include "common/compare.hpp"
#include "common/error.hpp"
#include "common/random.hpp"
#include "common/weights.hpp"
#include "cpu_reference/generation.hpp"
#include "cpu_reference/random_config.hpp"
#include "cpu_reference/transformer.hpp"
#include "cuda/decoder.hpp"
#include "cuda/forward.hpp"
#include "gpu_test.hpp"
#include "greedy_check.hpp"

using namespace lab;

namespace {

std::vector<int> random_tokens(Rng& rng, int n, int vocab) {
  std::vector<int> t(static_cast<std::size_t>(n));
  for (int& x : t) x = static_cast<int>(rng.below(static_cast<std::uint64_t>(vocab)));
  return t;
}

std::vector<ModelWeights> test_models() {
  std::vector<ModelWeights> models;
  models.push_back(random_weights(preset("tiny"), 1234));
  Rng rng(2024);
  for (int i = 0; i < 3; ++i)
    models.push_back(random_weights(cpu::random_config(rng, 256, 128), 77 + i));
  return models;
}

// fp32 everywhere: the longest reduction is the MLP's F (or the vocabulary-free attention length),
// compounded over the layers.
Tolerance fp32_chain_tolerance(const ModelConfig& c, int n) {
  return tolerance_for(DType::FP32, std::max({c.hidden_size, c.intermediate_size, n}),
                       c.num_layers + 1);
}

}  // namespace

TEST(Chain, Ch06NaiveMatchesCh02) {
  LAB_REQUIRE_GPU();
  Rng rng(5);
  for (const ModelWeights& w : test_models()) {
    const int n = std::min(w.config.max_seq_len, 40 + static_cast<int>(rng.below(60)));
    const auto tokens = random_tokens(rng, n, w.config.vocab_size);
    const auto ref = cpu::teacher_forced_logits(w, tokens);
    cuda::TeacherForcedForward gpu(w, cuda::MatmulBackend::Naive, n);
    const auto r = compare(ref, gpu.forward(tokens), fp32_chain_tolerance(w.config, n),
                           static_cast<std::size_t>(w.config.vocab_size));
    EXPECT_TRUE(r.passed) << w.config.name << ": " << summary(r);
    if (w.config.name == "tiny") EXPECT_LE(r.rel_l2, 1e-5) << "issue 5: <= 1e-5 on tiny";
    EXPECT_EQ(r.argmax_agreement, 1.0);
  }
}

TEST(Chain, Ch07CublasMatchesCh06) {
  LAB_REQUIRE_GPU();
  Rng rng(6);
  for (const ModelWeights& w : test_models()) {
    const int n = std::min(w.config.max_seq_len, 64);
    const auto tokens = random_tokens(rng, n, w.config.vocab_size);
    const auto V = static_cast<std::size_t>(w.config.vocab_size);
    const auto naive = cuda::TeacherForcedForward(w, cuda::MatmulBackend::Naive, n).forward(tokens);
    // fp32 cuBLAS: only the summation order differs from the naive kernel.
    const auto fp32 =
        cuda::TeacherForcedForward(w, cuda::MatmulBackend::CublasFP32, n).forward(tokens);
    const auto r32 = compare(naive, fp32, fp32_chain_tolerance(w.config, n), V);
    EXPECT_TRUE(r32.passed) << "fp32 " << w.config.name << ": " << summary(r32);
    // TF32 and bf16 round every GEMM input once (TF32 to 10 mantissa bits, like fp16; bf16 to 7)
    // and accumulate in fp32: the storage tolerance. Argmax: random-weight logits are nearly flat,
    // so a few rows are near-ties that any rounding may flip; a flip at a decisive row is a bug.
    for (auto [backend, dtype] : {std::pair{cuda::MatmulBackend::CublasTF32, DType::FP16},
                                  std::pair{cuda::MatmulBackend::CublasBF16, DType::BF16}}) {
      const auto got = cuda::TeacherForcedForward(w, backend, n).forward(tokens);
      const auto r = compare(naive, got, storage_tolerance(dtype, w.config.num_layers + 1), V);
      const auto ties = argmax_ties(naive, got, V);
      std::printf("%s %-8s %s\n%14s%s\n", cuda::to_string(backend).c_str(), w.config.name.c_str(),
                  summary(r).c_str(), "", summary(ties).c_str());
      EXPECT_TRUE(r.passed) << cuda::to_string(backend) << " " << w.config.name << ": "
                            << summary(r);
      EXPECT_EQ(ties.decisive_flips, 0u) << cuda::to_string(backend) << " " << summary(ties);
      EXPECT_GE(ties.decisive_rows * 2, ties.rows) << "too few decisive rows to judge";
    }
  }
}

TEST(Chain, Ch08Fp32MatchesCh04TokenForToken) {
  LAB_REQUIRE_GPU();
  for (const ModelWeights& w : test_models()) {
    Rng rng(7);
    const int steps = std::min(64, w.config.max_seq_len - 10);
    const auto prompt = random_tokens(rng, 8, w.config.vocab_size);
    // ch04: CPU KV-cache greedy generation, logits of every step kept.
    const cpu::Transformer<float> model(w);
    cpu::KVCache<float> cache(w.config, w.config.max_seq_len);
    cpu::GenerationOptions options;
    options.max_new_tokens = steps;
    const cpu::Generation ref = cpu::generate_with_cache(
        model, cache, prompt, options, [](std::span<const float> l) { return cpu::argmax(l); });
    // ch08: the same prompt; each step's logits against ch04's.
    cuda::Decoder gpu(w, {cuda::DecoderPrecision::FP32, w.config.max_seq_len});
    std::vector<float> logits = gpu.forward(prompt);
    const Tolerance tol =
        tolerance_for(DType::FP32, std::max(w.config.hidden_size, w.config.intermediate_size),
                      w.config.num_layers + 1);
    for (int s = 0; s < steps; ++s) {
      const auto r = compare(ref.logits[static_cast<std::size_t>(s)], logits, tol);
      ASSERT_TRUE(r.passed) << w.config.name << " step " << s << ": " << summary(r);
      EXPECT_LE(r.rel_l2, 1e-4) << "issue 5: fp32 decode <= 1e-4 along the greedy run";
      const int token = cpu::argmax(logits);
      ASSERT_EQ(token, ref.tokens[prompt.size() + static_cast<std::size_t>(s)])
          << w.config.name << " step " << s;
      if (s + 1 < steps) logits = gpu.forward(std::span<const int>(&token, 1));
    }
    // Greedy on the device, with and without the CUDA graph: the same tokens as ch04.
    const std::vector<int> expected(ref.tokens.begin() + static_cast<long>(prompt.size()),
                                    ref.tokens.end());
    for (bool graph : {false, true}) {
      gpu.reset();
      EXPECT_EQ(gpu.generate_greedy(prompt, steps, graph), expected) << "graph=" << graph;
    }
  }
}

TEST(Chain, Ch08Bf16TeacherForcedAndGreedy) {
  LAB_REQUIRE_GPU();
  for (const ModelWeights& w : test_models()) {
    Rng rng(8);
    const int n = std::min(64, w.config.max_seq_len);
    const auto tokens = random_tokens(rng, n, w.config.vocab_size);
    const auto ref = cpu::teacher_forced_logits(w, tokens);
    const auto V = static_cast<std::size_t>(w.config.vocab_size);
    cuda::Decoder gpu(w, {cuda::DecoderPrecision::BF16, w.config.max_seq_len});
    // Teacher-forced through the cache: the prefill GEMMs (bf16 tensor cores) for all rows ...
    const auto all = gpu.forward(tokens, /*all_logits=*/true);
    const Tolerance tol = storage_tolerance(DType::BF16, w.config.num_layers + 1);
    const auto r = compare(ref, all, tol, V);
    EXPECT_TRUE(r.passed) << "bf16 prefill " << w.config.name << ": " << summary(r);
    EXPECT_EQ(argmax_ties(ref, all, V).decisive_flips, 0u) << summary(argmax_ties(ref, all, V));
    // ... and one token at a time (the GEMV path), position by position.
    gpu.reset();
    std::vector<float> stepwise;
    for (int t : tokens) {
      const auto l = gpu.forward(std::span<const int>(&t, 1));
      stepwise.insert(stepwise.end(), l.begin(), l.end());
    }
    const auto rs = compare(ref, stepwise, tol, V);
    const auto ties = argmax_ties(ref, stepwise, V);
    EXPECT_TRUE(rs.passed) << "bf16 decode " << w.config.name << ": " << summary(rs);
    EXPECT_EQ(ties.decisive_flips, 0u) << summary(ties);
    std::printf("%s bf16: prefill %s\n           decode  %s\n                   %s\n",
                w.config.name.c_str(), summary(r).c_str(), summary(rs).c_str(),
                summary(ties).c_str());
  }
}

// Greedy tokens on tiny, 32 steps: the bf16 decoder (CUDA graph, argmax on the device) against the
// fp32 CPU decoder. Identical until the first step where they differ, if any; there the fp32
// reference must have been a near-tie between the two tokens (argmax_ties: the gap below
// 4·√2·σ of that step's bf16 error). After it the two runs continue different texts, so the
// comparison ends there. On random weights near-ties are common; on SmolLM2 (below) none occur.
TEST(Chain, Ch08Bf16GreedyDivergesOnlyAtNearTies) {
  LAB_REQUIRE_GPU();
  const ModelWeights w = random_weights(preset("tiny"), 1234);
  const cpu::Transformer<float> model(w);
  const int steps = 32;
  for (int p = 0; p < 6; ++p) {
    Rng rng(100 + static_cast<std::uint64_t>(p));
    const auto prompt = random_tokens(rng, 6, w.config.vocab_size);
    cpu::KVCache<float> cache(w.config, w.config.max_seq_len);
    cpu::GenerationOptions options;
    options.max_new_tokens = steps;
    const auto ref = cpu::generate_with_cache(
        model, cache, prompt, options, [](std::span<const float> l) { return cpu::argmax(l); });
    cuda::Decoder gpu(w, {cuda::DecoderPrecision::BF16, w.config.max_seq_len});
    expect_greedy_agrees_until_a_near_tie(gpu, ref, prompt, steps, "prompt " + std::to_string(p));
  }
}

TEST(Chain, Ch08RefusesToOverflowTheCache) {
  LAB_REQUIRE_GPU();
  const ModelWeights w = random_weights(preset("tiny"), 1);
  cuda::Decoder gpu(w, {cuda::DecoderPrecision::BF16, 16});
  std::vector<int> tokens(16, 3);
  gpu.forward(tokens);
  EXPECT_THROW(gpu.forward(std::span<const int>(tokens.data(), 1)), lab::Error);
  gpu.reset();
  EXPECT_THROW(gpu.generate_greedy(std::span<const int>(tokens.data(), 10), 8, true), lab::Error);
}
