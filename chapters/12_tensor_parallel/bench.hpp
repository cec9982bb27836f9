#pragma once
// Chapter 12's cost-model prediction (no GPU needed) and benchmark (--bench), called by main.cpp.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

struct ScalingOptions {
  std::vector<std::string> models = {"llama2-7b", "llama2-70b"};
  std::vector<int> world_sizes = {1, 2, 4, 8};
  int context = 512;  ///< context of the decode step
  int steps = 64;     ///< timed decode steps
  std::string hardware = "h100";
  std::string link = "nvlink4";
};

/// The cost model's decode step per GPU for every model and N: bytes, all-reduce volume, predicted
/// time. Pure arithmetic, runs anywhere. Fills out["prediction"].
void print_prediction(const ScalingOptions& options, nlohmann::json& out);

/// Measures decode tokens/s and the all-reduce time per step for every model and every N that
/// `gpus` (or, when `emulate`, one GPU) allows, beside the prediction. Fills out["measured"].
int run_bench(const ScalingOptions& options, int gpus, bool emulate, nlohmann::json& out);
