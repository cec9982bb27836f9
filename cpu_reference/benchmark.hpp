#pragma once
/// \file
/// \brief Measurements of this machine and of the CPU reference (chapter 4's `--bench`): memory
/// read bandwidth, Eigen's GEMM peak, prefill and decode throughput.

#include <vector>

#include "cpu_reference/transformer.hpp"

namespace lab::cpu {

/// Read bandwidth in bytes/s: the best of `repeats` passes summing a `megabytes` array, split over
/// the threads (a streaming kernel: every byte read once, nothing written).
double measure_read_bandwidth(int megabytes = 512, int repeats = 5);

/// Eigen's fp32 GEMM rate in FLOP/s on an n×n by n×n product (best of `repeats`).
double measure_gemm_peak(int n = 1024, int repeats = 5);

/// Prefill and decode rates of one model.
struct DecoderBenchmark {
  int prompt_tokens = 0;       ///< tokens in the timed prefill
  int decode_tokens = 0;       ///< timed decode steps
  double prefill_seconds = 0;  ///< median prefill time
  double decode_seconds = 0;   ///< median time of one decode step
  double prefill_flops = 0;    ///< FLOPs of the prefill (cost model)
  double decode_bytes = 0;     ///< bytes one decode step must read (weights + KV cache, fp32)
  double prefill_tokens_per_second() const { return prompt_tokens / prefill_seconds; }
  double decode_tokens_per_second() const { return 1.0 / decode_seconds; }
};

/// Times a prefill of `prompt_tokens` tokens and `decode_tokens` decode steps after it.
DecoderBenchmark benchmark_decoder(const Transformer<float>& model, int prompt_tokens,
                                   int decode_tokens, int repeats = 3);

}  // namespace lab::cpu
