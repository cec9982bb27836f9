#pragma once
// Greedy tokens of a reduced-precision GPU decoder against the fp32 CPU decoder (chapter 4), with
// the near-tie rule of Appendix C: identical until the first step where they differ, if any; there
// the bf16 decoder, replayed on the reference's tokens, must choose the token the graph chose, and
// the flip must be at a near-tie (argmax_ties: top-2 gap below 4·√2·σ of that step's error).
// After it the two runs continue different texts, so the comparison ends there.
#include <gtest/gtest.h>

#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "common/compare.hpp"
#include "cpu_reference/generation.hpp"
#include "cpu_reference/transformer.hpp"
#include "cuda/decoder.hpp"

/// Returns the number of leading tokens that agree (== steps when all do).
inline int expect_greedy_agrees_until_a_near_tie(lab::cuda::Decoder& gpu,
                                                 const lab::cpu::Generation& ref,
                                                 std::span<const int> prompt, int steps,
                                                 const std::string& label) {
  gpu.reset();
  const auto got = gpu.generate_greedy(prompt, steps, true);
  const std::vector<int> expected(ref.tokens.begin() + static_cast<long>(prompt.size()),
                                  ref.tokens.begin() + static_cast<long>(prompt.size()) + steps);
  int same = 0;
  while (same < steps &&
         got[static_cast<std::size_t>(same)] == expected[static_cast<std::size_t>(same)])
    ++same;
  std::printf("%s: bf16 greedy identical for %d of %d tokens", label.c_str(), same, steps);
  if (same == steps) {
    std::printf("\n");
    return same;
  }
  gpu.reset();
  std::vector<float> logits = gpu.forward(prompt);
  for (int s = 0; s < same; ++s) {
    const int token = expected[static_cast<std::size_t>(s)];
    logits = gpu.forward(std::span<const int>(&token, 1));
  }
  const auto& ref_logits = ref.logits[static_cast<std::size_t>(same)];
  EXPECT_EQ(lab::cpu::argmax(logits), got[static_cast<std::size_t>(same)]) << label;
  const auto ties = lab::argmax_ties(ref_logits, logits, ref_logits.size());
  const auto a = static_cast<std::size_t>(expected[static_cast<std::size_t>(same)]);
  const auto b = static_cast<std::size_t>(got[static_cast<std::size_t>(same)]);
  std::printf(": at step %d fp32 logits %.5f vs %.5f (gap %.1e); %s\n", same, ref_logits[a],
              ref_logits[b], ref_logits[a] - ref_logits[b], lab::summary(ties).c_str());
  EXPECT_EQ(ties.flips, 1u) << label;
  EXPECT_EQ(ties.decisive_flips, 0u) << label << ": a flip at a decisive step";
  return same;
}
