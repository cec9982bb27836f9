// Chapter 8's benchmark (--bench, H100 shapes): decode at the memory wall against a streaming
// read, the GEMV versions, TTFT. Kept apart from main.cpp's narrated run.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "bench.hpp"
#include "common/cost_model.hpp"
#include "common/error.hpp"
#include "common/model_source.hpp"
#include "common/random.hpp"
#include "cuda/buffer.hpp"
#include "cuda/decoder.hpp"
#include "cuda/device.hpp"
#include "cuda/resources.hpp"

namespace {

using lab::cuda::Decoder;
using lab::cuda::DecoderOptions;
using lab::cuda::DecoderPrecision;
using lab::cuda::GemvVersion;

std::vector<int> random_tokens(lab::Rng& rng, int n, int vocab) {
  std::vector<int> t(static_cast<std::size_t>(n));
  for (int& x : t) x = static_cast<int>(rng.below(static_cast<std::uint64_t>(vocab)));
  return t;
}

// --- The benchmark (H100): decode at the memory wall, against a streaming read. ---
double stream_read_bandwidth(nlohmann::json& out) {
  const std::int64_t bytes = std::int64_t{4} << 30;  // 4 GiB: 80x the L2, nothing is cached
  lab::cuda::DeviceBuffer<std::uint8_t> data(static_cast<std::size_t>(bytes));
  lab::cuda::fill_random<float>(reinterpret_cast<float*>(data.get()), bytes / 4, 9, 1.0f, 0.0f,
                                nullptr);
  const auto info = lab::cuda::require_device();
  lab::cuda::DeviceBuffer<float> sink(static_cast<std::size_t>(info.multiprocessors) * 8);
  lab::cuda::Stream stream;
  const auto t = lab::cuda::time_on_device(
      stream.get(), [&] { lab::cuda::stream_read(data.get(), bytes, sink.get(), stream.get()); }, 3,
      20);
  const double bw = static_cast<double>(bytes) / t.median;
  std::printf("streaming read of 4 GiB: %.3f ms -> %.0f GB/s (the ceiling below)\n", t.median * 1e3,
              bw / 1e9);
  out["stream_read"] = {{"bytes", bytes}, {"seconds", t.median}, {"bytes_per_second", bw}};
  return bw;
}

void bench_gemv(double ceiling, nlohmann::json& out) {
  // The decode GEMVs of llama2-7b, bf16, each version; weights rotated over >= 512 MB of copies.
  struct Shape {
    const char* name;
    int rows, cols;
  };
  const Shape shapes[] = {{"qkv_proj", 3 * 4096, 4096},
                          {"o_proj", 4096, 4096},
                          {"gate_up_proj", 2 * 11008, 4096},
                          {"down_proj", 4096, 11008},
                          {"lm_head", 32000, 4096}};
  lab::cuda::Stream stream;
  std::printf("\n%-13s %-22s %10s %10s %8s\n", "GEMV", "version", "us", "GB/s", "% read");
  for (const Shape& s : shapes) {
    const std::size_t count = static_cast<std::size_t>(s.rows) * s.cols;
    const int copies = static_cast<int>(std::max<std::size_t>(2, (512u << 20) / (count * 2)));
    lab::cuda::DeviceBuffer<lab::cuda::bf16> w(count * static_cast<std::size_t>(copies));
    lab::cuda::fill_random<lab::cuda::bf16>(w.get(), static_cast<std::int64_t>(w.size()), 3, 0.02f,
                                            0.0f, stream.get());
    lab::cuda::DeviceBuffer<float> x(static_cast<std::size_t>(s.cols)),
        y(static_cast<std::size_t>(s.rows));
    lab::cuda::fill_random<float>(x.get(), s.cols, 4, 1.0f, 0.0f, stream.get());
    const lab::OpCost cost = lab::matmul_cost(1, s.cols, s.rows, lab::DType::BF16);
    // Each version alone (an event pair around every launch), then as the decode step runs them:
    // 8 launches back to back (time per launch), with and without programmatic dependent launch.
    struct Run {
      GemvVersion version;
      int chain;
      bool pdl;
      std::string label;
    };
    const Run runs[] = {{GemvVersion::V1Naive, 1, false, "v1_naive"},
                        {GemvVersion::V2Warp, 1, false, "v2_warp_per_row"},
                        {GemvVersion::V3Vector16, 1, false, "v3_vector16"},
                        {GemvVersion::V4InFlight, 1, false, "v4_in_flight"},
                        {GemvVersion::V5Pdl, 1, false, "v5_pdl"},
                        {GemvVersion::V3Vector16, 8, false, "v3 x8 back to back"},
                        {GemvVersion::V4InFlight, 8, true, "v4 x8 back to back, PDL"},
                        {GemvVersion::V5Pdl, 8, false, "v5 x8 back to back"},
                        {GemvVersion::V5Pdl, 8, true, "v5 x8 back to back, PDL"},
                        {GemvVersion::V6Deep, 1, false, "v6_deep"},
                        {GemvVersion::V6Deep, 8, true, "v6 x8 back to back, PDL"},
                        {GemvVersion::V7Slab, 1, false, "v7_slab"},
                        {GemvVersion::V7Slab, 8, true, "v7 x8 back to back, PDL"}};
    for (const Run& run : runs) {
      int i = 0;
      const auto t = lab::cuda::time_on_device(
          stream.get(),
          [&] {
            for (int c = 0; c < run.chain; ++c) {
              const auto* wi = w.get() + count * static_cast<std::size_t>(i++ % copies);
              lab::cuda::gemv(run.version, wi, x.get(), y.get(), s.rows, s.cols, false,
                              stream.get(), run.pdl);
            }
          },
          3, 30);
      const double seconds = t.median / run.chain;
      const double bw = cost.bytes() / seconds;
      std::printf("%-13s %-22s %10.1f %10.0f %7.1f%%\n", s.name, run.label.c_str(), seconds * 1e6,
                  bw / 1e9, 100 * bw / ceiling);
      out["gemv"].push_back({{"op", s.name},
                             {"version", run.label},
                             {"rows", s.rows},
                             {"cols", s.cols},
                             {"flops", cost.flops},
                             {"bytes", cost.bytes()},
                             {"seconds", seconds},
                             {"bytes_per_second", bw}});
    }
  }
}

// The cost-model ops (common/cost_model.hpp) each decode-step kernel performs: the analytic
// FLOPs and bytes its measured time is set against. A fused kernel covers several ops; its
// analytic bytes still count the intermediates the fusion keeps on chip (a few KB a layer next to
// megabytes of weights). Kernels with no op of their own (the KV append: the cost model writes k
// and v straight into the cache; argmax; advancing the position) show none. "attention" is
// split-KV with its merge (one kernel in v2, two in v1).
lab::OpCost kernel_cost(const std::string& kernel, const lab::ModelConfig& c, int context) {
  static const std::map<std::string, std::vector<std::string>> covers = {
      {"embedding", {"embedding"}},
      {"attn_norm", {"layers.attn_norm"}},
      {"qkv_proj", {"layers.q_proj", "layers.k_proj", "layers.v_proj"}},
      {"rope (q, k)", {"layers.rope"}},
      {"attention", {"layers.attention_scores", "layers.softmax", "layers.attention_values"}},
      {"o_proj + residual", {"layers.o_proj", "layers.attn_residual"}},
      {"mlp_norm", {"layers.mlp_norm"}},
      {"gate_up_proj", {"layers.gate_proj", "layers.up_proj"}},
      {"swiglu", {"layers.swiglu"}},
      {"down_proj + residual", {"layers.down_proj", "layers.mlp_residual"}},
      {"final_norm", {"final_norm"}},
      {"lm_head", {"logits"}},
      {"qkv_proj + norm + rope + append",
       {"layers.attn_norm", "layers.q_proj", "layers.k_proj", "layers.v_proj", "layers.rope"}},
      {"gate_up_proj + norm + swiglu",
       {"layers.mlp_norm", "layers.gate_proj", "layers.up_proj", "layers.swiglu"}},
      {"lm_head + final_norm", {"final_norm", "logits"}}};
  lab::Workload work = lab::decode_workload(context, 1, lab::DType::BF16);
  work.fused_attention = true;  // split-KV: scores stay in shared memory
  lab::OpCost sum{kernel};
  const auto it = covers.find(kernel);
  if (it == covers.end()) return sum;
  for (const lab::OpCost& op : lab::model_costs(c, work))
    if (std::find(it->second.begin(), it->second.end(), op.name) != it->second.end()) sum += op;
  return sum;
}

// Every kernel of one decode step: measured (an event between kernels, CUDA graph, PDL off) next
// to the analytic bytes and FLOPs of the ops it performs.
void profile_step(Decoder& gpu, const std::string& label, int context, double ceiling,
                  nlohmann::json& j) {
  std::vector<lab::cuda::StepKernelTime> kernels;
  bool graph = true;
  try {
    kernels = gpu.profile_decode_step(20, true);
  } catch (const lab::Error& e) {  // events as graph nodes unsupported: host launches instead
    std::printf("(profile in a graph failed: %s; host launches instead)\n", e.what());
    graph = false;
    kernels = gpu.profile_decode_step(20, false);
  }
  const lab::ModelConfig& c = gpu.config();
  double total = 0;
  for (const auto& k : kernels) total += k.seconds;
  std::printf("\n%s, %s: one decode step, kernel by kernel (%s, PDL off; per step, all layers)\n",
              c.name.c_str(), label.c_str(), graph ? "events in a CUDA graph" : "host launches");
  std::printf("%-32s %8s %9s %7s %10s %10s %9s %7s\n", "kernel", "launches", "us", "share",
              "model MB", "MFLOP", "GB/s", "% read");
  for (const auto& k : kernels) {
    const lab::OpCost cost = kernel_cost(k.name, c, context);
    const double bw = cost.bytes() / k.seconds;
    if (cost.bytes() > 0)
      std::printf("%-32s %8d %9.1f %6.1f%% %10.2f %10.2f %9.0f %6.1f%%\n", k.name.c_str(),
                  k.launches, k.seconds * 1e6, 100 * k.seconds / total, cost.bytes() / 1e6,
                  cost.flops / 1e6, bw / 1e9, 100 * bw / ceiling);
    else
      std::printf("%-32s %8d %9.1f %6.1f%% %10s %10s %9s %7s\n", k.name.c_str(), k.launches,
                  k.seconds * 1e6, 100 * k.seconds / total, "-", "-", "-", "-");
    j["kernels"].push_back({{"kernel", k.name},
                            {"launches", k.launches},
                            {"seconds", k.seconds},
                            {"model_bytes", cost.bytes()},
                            {"model_flops", cost.flops}});
  }
  std::printf("%-32s %8s %9.1f\n", "sum", "", total * 1e6);
  j["profiled_in_graph"] = graph;
  j["profile_seconds"] = total;
}

// `real`: the model's own weights (converted to bf16); otherwise random weights of preset `name`
// drawn on the device. Timings do not depend on the values; the real weights show it.
void bench_decode(const std::string& name, int context, int steps, double ceiling, bool ttft,
                  nlohmann::json& out, const lab::ModelWeights* real = nullptr) {
  DecoderOptions options;
  options.precision = DecoderPrecision::BF16;
  options.capacity = context + steps + 64;
  options.max_prefill = context;
  Decoder gpu = real ? Decoder(*real, options) : Decoder(lab::preset(name), 1234, options);
  const lab::ModelConfig& c = gpu.config();
  lab::Rng rng(5);
  const auto prompt = random_tokens(rng, context, c.vocab_size);
  if (ttft) {
    const auto t = gpu.time_prefill(prompt, 2, 10);
    std::printf("%s: TTFT (prefill of %d tokens + first logits) %.2f ms\n", name.c_str(), context,
                t.median * 1e3);
    out["ttft"].push_back({{"model", name}, {"context", context}, {"seconds", t.median}});
  }
  gpu.forward(std::span<const int>(prompt.data(), static_cast<std::size_t>(context - 1)));
  const double bytes = gpu.decode_bytes(context + steps / 2);
  // The versions of the step, oldest first, on the same weights and cache.
  struct Version {
    const char* label;
    GemvVersion gemv;
    bool fuse, pdl;
    int split_kv;  // attention's split-KV version
  };
  const Version versions[] = {
      {"v3 GEMVs, 11 kernels a layer", GemvVersion::V3Vector16, false, false, 2},
      {"fused, 5 a layer, v4 o/down", GemvVersion::V4InFlight, true, false, 2},
      {"fused, v4 o/down, PDL", GemvVersion::V4InFlight, true, true, 2},
      {"fused, v5 o/down, PDL", GemvVersion::V5Pdl, true, true, 2},
      {"fused, v6 o/down, PDL", GemvVersion::V6Deep, true, true, 2},
      {"fused, v5 o/down, attn v3, PDL", GemvVersion::V5Pdl, true, true, 3},
      {"fused, v6 o/down, attn v3, PDL", GemvVersion::V6Deep, true, true, 3},
      {"fused, v5 o/down, attn v4 (o to L2), PDL", GemvVersion::V5Pdl, true, true, 4},
      {"fused, v7 slabs everywhere, attn v3, PDL", GemvVersion::V7Slab, true, true, 3}};
  const DecoderOptions defaults;
  const auto* found = std::find_if(std::begin(versions), std::end(versions), [&](const auto& v) {
    return v.gemv == defaults.gemv && v.fuse == defaults.fuse && v.pdl == defaults.pdl &&
           v.split_kv == defaults.split_kv_version;
  });
  lab::require(found != std::end(versions), "bench: DecoderOptions' defaults are not in the table");
  const Version& chosen = *found;
  for (const Version& v : versions) {
    gpu.set_decode_kernels(v.gemv, v.fuse, v.pdl, v.split_kv);
    nlohmann::json j{{"model", name}, {"context", context}, {"steps", steps}, {"version", v.label}};
    double seconds[2] = {0, 0};
    for (bool graph : {false, true}) {
      const auto t = gpu.time_decode(steps, 8, graph);
      const double bw = bytes / t.median;
      seconds[graph] = t.median;
      std::printf(
          "%-13s decode @%d %-40s %-9s %7.3f ms/token %7.1f tokens/s %6.0f GB/s %5.1f%% of read\n",
          name.c_str(), context, v.label, graph ? "graph" : "no graph", t.median * 1e3,
          1 / t.median, bw / 1e9, 100 * bw / ceiling);
      j[graph ? "graph" : "no_graph"] = {
          {"seconds_per_token", t.median}, {"tokens_per_second", 1 / t.median},
          {"p90_seconds", t.p90},          {"bytes_per_token", bytes},
          {"bytes_per_second", bw},        {"share_of_stream_read", bw / ceiling}};
    }
    std::printf("%-13s decode @%d %-40s graph speed-up %.2fx\n", name.c_str(), context, v.label,
                seconds[0] / seconds[1]);
    j["graph_speedup"] = seconds[0] / seconds[1];
    j["default"] = &v == &chosen;  // the decoder's default kernels (scripts/decode_goals.py)
    out["decode"].push_back(j);
  }
  for (const Version& v : {versions[0], versions[3], chosen, versions[8]}) {  // PDL off
    gpu.set_decode_kernels(v.gemv, v.fuse, false, v.split_kv);
    nlohmann::json j{{"model", name}, {"context", context}, {"version", v.label}};
    profile_step(gpu, v.label, context, ceiling, j);
    out["step_profile"].push_back(j);
  }
  gpu.set_decode_kernels(chosen.gemv, chosen.fuse, chosen.pdl, chosen.split_kv);
}

}  // namespace

int run_bench(const BenchOptions& o, nlohmann::json& out) {
  out["device"] = lab::cuda::require_device().name;
  const double ceiling = stream_read_bandwidth(out);
  bench_decode(o.model, o.context, o.steps, ceiling, false, out);
  // SmolLM2 with its real weights when the model is in the cache (scripts/fetch_model.sh).
  if (std::filesystem::exists(lab::smollm2_gguf_path())) {
    const lab::LoadedModel smollm2 = lab::load_model("smollm2", 0);
    bench_decode("smollm2 (real)", o.context, o.steps, ceiling, true, out, &smollm2.weights);
  } else {
    std::printf("(SmolLM2 not in the cache: its shape with random weights)\n");
    bench_decode("smollm2-135m", o.context, o.steps, ceiling, true, out);
  }
  bench_gemv(ceiling, out);
  return 0;
}
