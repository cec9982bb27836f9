// Chapter 12's numbers: the cost model's prediction of a tensor-parallel decode step (pure
// arithmetic) and its measurement with NCCL on however many GPUs there are.
#include "bench.hpp"

#include <cstdio>

#include "common/cost_model.hpp"
#include "common/error.hpp"
#include "common/random.hpp"
#include "common/tensor_parallel.hpp"
#include "cuda/device.hpp"
#include "cuda/tensor_parallel.hpp"

namespace {

lab::TensorParallelStepCost predict(const ScalingOptions& o, const lab::ModelConfig& c, int n) {
  return lab::tensor_parallel_decode_cost(c, n, o.context, lab::DType::BF16, lab::DType::FP32,
                                          lab::hardware_preset(o.hardware),
                                          lab::interconnect_preset(o.link));
}

nlohmann::json to_json(const lab::TensorParallelStepCost& t) {
  return {{"world_size", t.world_size},
          {"bytes_per_gpu", t.bytes_per_gpu},
          {"sharded_weight_bytes", t.sharded_weight_bytes},
          {"replicated_bytes", t.replicated_bytes},
          {"kv_bytes", t.kv_bytes},
          {"all_reduces", t.all_reduces},
          {"all_reduce_payload", t.all_reduce_payload},
          {"all_reduce_bytes_per_gpu", t.all_reduce_bytes_per_gpu},
          {"memory_seconds", t.memory_seconds},
          {"all_reduce_seconds", t.all_reduce_seconds},
          {"step_seconds", t.step_seconds},
          {"tokens_per_second", t.tokens_per_second()}};
}

}  // namespace

void print_prediction(const ScalingOptions& o, nlohmann::json& out) {
  const lab::Hardware hw = lab::hardware_preset(o.hardware);
  const lab::Interconnect link = lab::interconnect_preset(o.link);
  std::printf(
      "Predicted decode step, batch 1, context %d, bf16 weights and KV cache, fp32 "
      "all-reduce payload; %s (%.2f TB/s), %s (%.0f GB/s, %.1f us + %.1f us per ring "
      "step)\n",
      o.context, hw.name.c_str(), hw.bandwidth / 1e12, link.name.c_str(), link.bandwidth / 1e9,
      link.base_latency * 1e6, link.step_latency * 1e6);
  std::printf("%-11s %2s %11s %11s %10s %12s %10s %10s %10s %9s\n", "model", "N", "GB/GPU",
              "of which", "KV MB", "all-reduce", "memory", "all-red.", "step", "tokens/s");
  std::printf("%-11s %2s %11s %11s %10s %12s %10s %10s %10s %9s\n", "", "", "(read/step)",
              "replicated", "/GPU", "KB/GPU/step", "ms", "ms", "ms", "");
  nlohmann::json rows = nlohmann::json::array();
  for (const std::string& name : o.models) {
    const lab::ModelConfig c = lab::preset(name);
    double one = 0;
    for (int n : o.world_sizes) {
      nlohmann::json row{{"model", name}, {"context", o.context}};
      try {
        const auto t = predict(o, c, n);
        if (n == 1) one = t.step_seconds;
        std::printf("%-11s %2d %11.2f %11.2f %10.1f %12.1f %10.3f %10.3f %10.3f %9.0f",
                    name.c_str(), n, t.bytes_per_gpu / 1e9, t.replicated_bytes / 1e9,
                    t.kv_bytes / 1e6, t.all_reduce_bytes_per_gpu / 1e3, t.memory_seconds * 1e3,
                    t.all_reduce_seconds * 1e3, t.step_seconds * 1e3, t.tokens_per_second());
        if (one > 0 && n > 1) std::printf("  (%.2fx of N=1)", one / t.step_seconds);
        std::printf("\n");
        row.update(to_json(t));
      } catch (const lab::Error& e) {
        std::printf("%-11s %2d does not split: %s\n", name.c_str(), n, e.what());
        row["world_size"] = n;
        row["error"] = e.what();
      }
      rows.push_back(row);
    }
  }
  out["prediction"] = {{"hardware", hw.name},
                       {"bandwidth", hw.bandwidth},
                       {"link", link.name},
                       {"link_bandwidth", link.bandwidth},
                       {"base_latency", link.base_latency},
                       {"step_latency", link.step_latency},
                       {"rows", rows}};
}

//! [bench_point]
int run_bench(const ScalingOptions& o, int gpus, bool emulate, nlohmann::json& out) {
  const auto info = lab::cuda::require_device();
  out["device"] = info.name;
  out["gpus"] = gpus;
  out["emulated"] = emulate;
  std::printf("\nMeasured (%s%s), context %d, %d steps, CUDA graphs:\n", info.name.c_str(),
              emulate ? ", all ranks emulated on this one GPU" : "", o.context, o.steps);
  std::printf("%-11s %2s %10s %10s %10s %10s %12s %12s\n", "model", "N", "step ms", "predicted",
              "tokens/s", "predicted", "all-red. ms", "predicted");
  nlohmann::json rows = nlohmann::json::array();
  for (const std::string& name : o.models) {
    const lab::ModelConfig c = lab::preset(name);
    for (int n : o.world_sizes) {
      if (n > gpus) continue;  // only as many GPUs (or emulated ranks) as there are
      nlohmann::json row{{"model", name}, {"world_size", n}, {"context", o.context}};
      try {
        const auto t = predict(o, c, n);
        lab::cuda::TensorParallelOptions options;
        options.world_size = n;
        options.emulate = emulate;
        options.decoder.precision = lab::cuda::DecoderPrecision::BF16;
        options.decoder.capacity = o.context + o.steps + 16;
        options.decoder.max_prefill = o.context;
        lab::cuda::TensorParallelDecoder tp(c, 1234, options);
        lab::Rng rng(5);
        std::vector<int> prompt(static_cast<std::size_t>(o.context - 1));
        for (int& x : prompt)
          x = static_cast<int>(rng.below(static_cast<std::uint64_t>(c.vocab_size)));
        tp.forward(prompt);  // the cache now holds context − 1 tokens
        const auto step = tp.time_decode(o.steps, 8, /*use_graph=*/true);
        const auto reduce = tp.time_step_all_reduces(3, 20);
        std::printf("%-11s %2d %10.3f %10.3f %10.1f %10.1f %12.3f %12.3f\n", name.c_str(), n,
                    step.median * 1e3, t.step_seconds * 1e3, 1 / step.median, t.tokens_per_second(),
                    reduce.median * 1e3, t.all_reduce_seconds * 1e3);
        row.update({{"step_seconds", step.median},
                    {"step_p90_seconds", step.p90},
                    {"tokens_per_second", 1 / step.median},
                    {"all_reduce_seconds", reduce.median},
                    {"bytes_per_gpu", tp.decode_bytes_per_gpu(o.context)},
                    {"predicted", to_json(t)}});
      } catch (const lab::Error& e) {  // does not fit, does not split: say so, go on
        std::printf("%-11s %2d skipped: %s\n", name.c_str(), n, e.what());
        row["skipped"] = e.what();
      }
      rows.push_back(row);
    }
  }
  out["measured"] = rows;
  return 0;
}
//! [bench_point]
