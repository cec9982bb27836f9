// The bf16 storage tolerance (common/compare.hpp storage_tolerance) checked on the CPU, where the
// one difference between two runs can be controlled exactly: the same fp32 forward pass with its
// weights rounded to bf16 (as the GPU's bf16 decoder stores them) against the unrounded one. The
// GPU chain tests then apply the same bound to the real bf16 kernels.
#include <gtest/gtest.h>

#include <cstdio>

#include "common/compare.hpp"
#include "common/quant.hpp"
#include "common/random.hpp"
#include "common/weights.hpp"
#include "cpu_reference/random_config.hpp"
#include "cpu_reference/transformer.hpp"

using namespace lab;

namespace {

ModelWeights rounded_to_bf16(ModelWeights w) {
  for (auto& [name, tensor] : w.tensors)
    for (float& x : tensor.data) x = bf16_to_fp32(fp32_to_bf16(x));
  return w;
}

}  // namespace

TEST(StorageTolerance, Bf16WeightsStayInsideTheBoundAndFlipOnlyNearTies) {
  std::vector<ModelWeights> models;
  models.push_back(random_weights(preset("tiny"), 1234));
  Rng rng(2024);
  for (int i = 0; i < 3; ++i)
    models.push_back(random_weights(cpu::random_config(rng, 256, 128), 77 + i));
  for (const ModelWeights& w : models) {
    const int n = std::min(w.config.max_seq_len, 64);
    std::vector<int> tokens(static_cast<std::size_t>(n));
    for (int& t : tokens) t = static_cast<int>(rng.below(w.config.vocab_size));
    const auto ref = cpu::teacher_forced_logits(w, tokens);
    const auto got = cpu::teacher_forced_logits(rounded_to_bf16(w), tokens);
    const auto V = static_cast<std::size_t>(w.config.vocab_size);
    const auto r = compare(ref, got, storage_tolerance(DType::BF16, w.config.num_layers + 1), V);
    const auto ties = argmax_ties(ref, got, V);
    std::printf("%-24s %s\n%24s %s\n", w.config.name.c_str(), summary(r).c_str(), "",
                summary(ties).c_str());
    EXPECT_TRUE(r.passed) << w.config.name << ": " << summary(r);
    EXPECT_EQ(ties.decisive_flips, 0u) << summary(ties);
    // Not vacuous: the rounding is visible, and most rows are decisive.
    EXPECT_GT(r.rel_l2, 1e-4);
    EXPECT_GE(ties.decisive_rows * 2, ties.rows) << summary(ties);
  }
}
