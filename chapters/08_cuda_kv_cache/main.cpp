// Chapter 8: the GPU decoder with a KV cache on the device, and the memory wall (内存墙).
// Seed §10.2.2. Prefill runs GEMMs; every decode step is a chain of GEMVs that must stream all the
// weights from HBM for one token, so the step time is bytes / bandwidth, and the measure of a
// decoder is the share of the bandwidth it reaches.
#include <cstdio>
#include <string>
#include <vector>

#include "common/cli.hpp"
#include "common/compare.hpp"
#include "common/cost_model.hpp"
#include "common/error.hpp"
#include "common/model_source.hpp"
#include "common/random.hpp"
#include "cpu_reference/generation.hpp"
#include "cpu_reference/transformer.hpp"
#include "cuda/buffer.hpp"
#include "cuda/decoder.hpp"
#include "cuda/device.hpp"
#include "cuda/resources.hpp"

namespace {

using lab::cuda::Decoder;
using lab::cuda::DecoderOptions;
using lab::cuda::DecoderPrecision;

struct Options {
  lab::CommonOptions common;
  bool bench = false;
  std::string prompt = "The KV cache";
  int max_new_tokens = 32;
  int context = 512;  // --context: decode benchmark context length
  int steps = 64;     // --steps: timed decode steps
  std::string bench_model = "llama2-7b";
};

std::vector<int> random_tokens(lab::Rng& rng, int n, int vocab) {
  std::vector<int> t(static_cast<std::size_t>(n));
  for (int& x : t) x = static_cast<int>(rng.below(static_cast<std::uint64_t>(vocab)));
  return t;
}

// --- The narrated run: the decoder against chapter 4, on the model given by --model. ---
int narrate(const Options& o, nlohmann::json& out) {
  const lab::LoadedModel model = lab::load_model(o.common.model, o.common.seed);
  const lab::ModelConfig& c = model.weights.config;
  std::printf("model: %s\n", lab::describe(c).c_str());
  const std::vector<int> prompt = model.tokenizer->encode(o.prompt);
  std::printf("prompt: \"%s\" (%zu tokens)\n\n", o.prompt.c_str(), prompt.size());

  // 1. The chapter 4 oracle: greedy decoding with the CPU KV cache.
  const lab::cpu::Transformer<float> cpu(model.weights);
  lab::cpu::KVCache<float> cache(c, static_cast<int>(prompt.size()) + o.max_new_tokens);
  lab::cpu::GenerationOptions gen;
  gen.max_new_tokens = o.max_new_tokens;
  const auto ref = lab::cpu::generate_with_cache(
      cpu, cache, prompt, gen, [](std::span<const float> l) { return lab::cpu::argmax(l); });
  const std::vector<int> expected(ref.tokens.begin() + static_cast<long>(prompt.size()),
                                  ref.tokens.end());

  std::printf("== 1. Decoding on the GPU, checked against chapter 4 (CPU KV cache) ==\n");
  for (DecoderPrecision precision : {DecoderPrecision::FP32, DecoderPrecision::BF16}) {
    DecoderOptions options;
    options.precision = precision;
    options.capacity = static_cast<int>(prompt.size()) + o.max_new_tokens;
    Decoder gpu(model.weights, options);
    // Step by step through forward(), comparing each step's logits with chapter 4's.
    std::vector<float> logits = gpu.forward(prompt);
    double worst = 0;
    for (int s = 0; s < o.max_new_tokens; ++s) {
      const auto r = lab::compare(ref.logits[static_cast<std::size_t>(s)], logits,
                                  lab::tolerance_for(lab::DType::FP32, 1));
      worst = std::max(worst, r.rel_l2);
      const int token = expected[static_cast<std::size_t>(s)];
      if (s + 1 < o.max_new_tokens) logits = gpu.forward(std::span<const int>(&token, 1));
    }
    gpu.reset();
    const auto greedy = gpu.generate_greedy(prompt, o.max_new_tokens, /*use_graph=*/true);
    int same = 0;
    while (same < static_cast<int>(greedy.size()) && greedy[same] == expected[same]) ++same;
    std::printf(
        "%s: worst rel L2 of the step logits %.1e; greedy tokens (CUDA graph, argmax on "
        "the GPU) identical for %d of %d\n",
        lab::cuda::to_string(precision).c_str(), worst, same, o.max_new_tokens);
    out["check"][lab::cuda::to_string(precision)] = {{"worst_rel_l2", worst},
                                                     {"identical_tokens", same}};
  }
  std::printf("generated: \"%s\"\n\n", model.tokenizer->decode(expected).c_str());

  // 2. What a decode step must read: the memory wall in bytes.
  std::printf("== 2. Bytes one decode step reads (bf16 weights and KV cache) ==\n");
  for (const char* name : {"tiny", "smollm2-135m", "llama2-7b", "llama3-8b"}) {
    const lab::ModelConfig m = lab::preset(name);
    const double weights = lab::weight_bytes(m, lab::DType::BF16);
    const double kv = static_cast<double>(lab::kv_cache_bytes_per_token(m, lab::DType::BF16)) * 512;
    std::printf("%-13s weights %9.1f MB + KV @512 %7.1f MB -> at 3.0 TB/s at most %8.0f tokens/s\n",
                name, weights / 1e6, kv / 1e6, 3.0e12 / (weights + kv));
  }
  return 0;
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

int bench(const Options& o, nlohmann::json& out) {
  out["device"] = lab::cuda::require_device().name;
  const double ceiling = stream_read_bandwidth(out);
  bench_decode(o.bench_model, o.context, o.steps, ceiling, false, out);
  bench_decode("smollm2-135m", o.context, o.steps, ceiling, true, out);
  bench_gemv(ceiling, out);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Chapter 8: the GPU decoder with a KV cache, and the memory wall"};
  lab::add_common_options(app, o.common);
  app.add_flag("--bench", o.bench, "measure decode tokens/s and bandwidth (H100 shapes)");
  app.add_option("--prompt", o.prompt, "prompt text");
  app.add_option("--max-new-tokens", o.max_new_tokens, "tokens to generate")
      ->check(CLI::Range(1, 4096));
  app.add_option("--context", o.context, "context length of the decode benchmark")
      ->check(CLI::Range(2, 32768));
  app.add_option("--steps", o.steps, "timed decode steps")->check(CLI::Range(1, 4096));
  app.add_option("--bench-model", o.bench_model, "preset for the decode benchmark")
      ->check(CLI::IsMember(lab::preset_names()));
  if (auto code = lab::parse_command_line(app, argc, argv)) return *code;
  return lab::run_main("ch08_cuda_kv_cache", [&] {
    const auto info = lab::cuda::require_device();
    if (!o.common.doc) std::printf("device: %s\n", lab::cuda::describe(info).c_str());
    nlohmann::json out;
    const int code = o.bench ? bench(o, out) : narrate(o, out);
    if (!o.common.json_path.empty()) lab::write_json(o.common.json_path, out);
    return code;
  });
}
