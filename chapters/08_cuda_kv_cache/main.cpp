// Chapter 8: the GPU decoder with a KV cache on the device, and the memory wall (内存墙).
// Seed §10.2.2. Prefill runs GEMMs; every decode step is a chain of GEMVs that must stream all the
// weights from HBM for one token, so the step time is bytes / bandwidth, and the measure of a
// decoder is the share of the bandwidth it reaches.
#include <cstdio>
#include <string>
#include <vector>

#include "bench.hpp"
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
  BenchOptions bench_options;  // --context, --steps, --bench-model
};

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

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Chapter 8: the GPU decoder with a KV cache, and the memory wall"};
  lab::add_common_options(app, o.common);
  app.add_flag("--bench", o.bench, "measure decode tokens/s and bandwidth (H100 shapes)");
  app.add_option("--prompt", o.prompt, "prompt text");
  app.add_option("--max-new-tokens", o.max_new_tokens, "tokens to generate")
      ->check(CLI::Range(1, 4096));
  app.add_option("--context", o.bench_options.context, "context length of the decode benchmark")
      ->check(CLI::Range(2, 32768));
  app.add_option("--steps", o.bench_options.steps, "timed decode steps")
      ->check(CLI::Range(1, 4096));
  app.add_option("--bench-model", o.bench_options.model, "preset for the decode benchmark")
      ->check(CLI::IsMember(lab::preset_names()));
  if (auto code = lab::parse_command_line(app, argc, argv)) return *code;
  return lab::run_main("ch08_cuda_kv_cache", [&] {
    const auto info = lab::cuda::require_device();
    if (!o.common.doc) std::printf("device: %s\n", lab::cuda::describe(info).c_str());
    nlohmann::json out;
    const int code = o.bench ? run_bench(o.bench_options, out) : narrate(o, out);
    if (!o.common.json_path.empty()) lab::write_json(o.common.json_path, out);
    return code;
  });
}
