#pragma once
// Chapter 8's benchmark, called by main.cpp for --bench.
#include <string>

#include <nlohmann/json.hpp>

struct BenchOptions {
  std::string model = "llama2-7b";  ///< preset of the decode benchmark
  int context = 512;                ///< context length of the decode benchmark
  int steps = 64;                   ///< timed decode steps
};

/// Streaming-read ceiling, decode tokens/s with and without CUDA graphs, TTFT, GEMV versions.
int run_bench(const BenchOptions& options, nlohmann::json& out);
