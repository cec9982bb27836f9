#pragma once
/// \file
/// \brief The teacher-forced forward pass on the GPU (chapters 6 and 7): the whole sequence in
/// one pass, causal mask, naive attention with materialised scores. Only the linear layers change
/// between the chapters: one thread per output (naive), or cuBLAS in fp32, TF32 or bf16.

#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/timing.hpp"
#include "common/weights.hpp"
#include "cuda/gemm.hpp"

namespace lab::cuda {

class TeacherForcedForward {
 public:
  /// Uploads `weights` (fp32; plus bf16 copies of the matrices for MatmulBackend::CublasBF16).
  /// `max_tokens` sizes the activations (default: the model's max_seq_len). Throws lab::Error when
  /// the model does not fit in GPU memory.
  TeacherForcedForward(const ModelWeights& weights, MatmulBackend backend, int max_tokens = 0);
  ~TeacherForcedForward();
  TeacherForcedForward(const TeacherForcedForward&) = delete;
  TeacherForcedForward& operator=(const TeacherForcedForward&) = delete;

  const ModelConfig& config() const;
  MatmulBackend backend() const;

  /// Logits of every position, (n, V) row-major: row i predicts token i + 1.
  std::vector<float> forward(std::span<const int> tokens);

  /// Device time of forward(tokens) (excluding the token upload and the logits download).
  TimingStats time_forward(std::span<const int> tokens, int warmup, int repeats);

  /// Device seconds per op for one forward, summed over the layers, keyed like the cost model
  /// ("embedding", "layers.q_proj", ..., "logits"). Synchronises after every op: for study only.
  std::map<std::string, double> profile(std::span<const int> tokens);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lab::cuda
