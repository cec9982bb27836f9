// Chapter 8's benchmark (--bench, H100 shapes): decode at the memory wall against a streaming
// read, the GEMV versions, TTFT. Kept apart from main.cpp's narrated run.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "bench.hpp"
#include "common/cost_model.hpp"
#include "common/random.hpp"
#include "cuda/buffer.hpp"
#include "cuda/decoder.hpp"
#include "cuda/device.hpp"
#include "cuda/resources.hpp"

namespace {

using lab::cuda::Decoder;
using lab::cuda::DecoderOptions;
using lab::cuda::DecoderPrecision;

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
  std::printf("\n%-13s %-16s %10s %10s %8s\n", "GEMV", "version", "us", "GB/s", "% read");
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
    for (auto version : {lab::cuda::GemvVersion::V1Naive, lab::cuda::GemvVersion::V2Warp,
                         lab::cuda::GemvVersion::V3Vector16}) {
      int i = 0;
      const auto t = lab::cuda::time_on_device(
          stream.get(),
          [&] {
            const auto* wi = w.get() + count * static_cast<std::size_t>(i++ % copies);
            lab::cuda::gemv(version, wi, x.get(), y.get(), s.rows, s.cols, false, stream.get());
          },
          3, 30);
      const double bw = cost.bytes() / t.median;
      std::printf("%-13s %-16s %10.1f %10.0f %7.1f%%\n", s.name, lab::cuda::to_string(version),
                  t.median * 1e6, bw / 1e9, 100 * bw / ceiling);
      out["gemv"].push_back({{"op", s.name},
                             {"version", lab::cuda::to_string(version)},
                             {"rows", s.rows},
                             {"cols", s.cols},
                             {"flops", cost.flops},
                             {"bytes", cost.bytes()},
                             {"seconds", t.median},
                             {"bytes_per_second", bw}});
    }
  }
}

void bench_decode(const std::string& name, int context, int steps, double ceiling, bool ttft,
                  nlohmann::json& out) {
  const lab::ModelConfig c = lab::preset(name);
  DecoderOptions options;
  options.precision = DecoderPrecision::BF16;
  options.capacity = context + steps + 16;
  options.max_prefill = context;
  Decoder gpu(c, 1234, options);
  lab::Rng rng(5);
  const auto prompt = random_tokens(rng, context, c.vocab_size);
  nlohmann::json j{{"model", name}, {"context", context}, {"steps", steps}};
  if (ttft) {
    const auto t = gpu.time_prefill(prompt, 2, 10);
    std::printf("%s: TTFT (prefill of %d tokens + first logits) %.2f ms\n", name.c_str(), context,
                t.median * 1e3);
    j["ttft_seconds"] = t.median;
  }
  gpu.forward(std::span<const int>(prompt.data(), static_cast<std::size_t>(context - 1)));
  const double bytes = gpu.decode_bytes(context + steps / 2);
  for (bool graph : {false, true}) {
    const auto t = gpu.time_decode(steps, 8, graph);
    const double bw = bytes / t.median;
    std::printf("%-13s decode @%d %-9s %8.3f ms/token %8.1f tokens/s %7.0f GB/s %6.1f%% of read\n",
                name.c_str(), context, graph ? "graph" : "no graph", t.median * 1e3, 1 / t.median,
                bw / 1e9, 100 * bw / ceiling);
    j[graph ? "graph" : "no_graph"] = {
        {"seconds_per_token", t.median}, {"tokens_per_second", 1 / t.median},
        {"p90_seconds", t.p90},          {"bytes_per_token", bytes},
        {"bytes_per_second", bw},        {"share_of_stream_read", bw / ceiling}};
  }
  out["decode"].push_back(j);
}

}  // namespace

int run_bench(const BenchOptions& o, nlohmann::json& out) {
  out["device"] = lab::cuda::require_device().name;
  const double ceiling = stream_read_bandwidth(out);
  bench_decode(o.model, o.context, o.steps, ceiling, false, out);
  bench_decode("smollm2-135m", o.context, o.steps, ceiling, true, out);
  bench_gemv(ceiling, out);
  return 0;
}
