#pragma once
/// \file
/// \brief Lab 2 interface (frozen): RMSNorm and causal-masked softmax attention for one head.

#include <span>
#include <vector>

/// Lab 2: the two layers a teacher-forced pass cannot do without.
namespace lab02 {

/// RMSNorm of one row: y_j = x_j / sqrt(mean(x²) + eps) · gain_j.
std::vector<float> rms_norm(std::span<const float> x, std::span<const float> gain, float eps);

/// One head of causal attention. q, k, v: (n, d) row-major. Row i of the result is
/// Σ_{j ≤ i} softmax_j(q_i·k_j / sqrt(d)) v_j, (n, d) row-major.
std::vector<float> causal_attention(std::span<const float> q, std::span<const float> k,
                                    std::span<const float> v, int n, int d);

}  // namespace lab02
