// Chapter 8: the GPU decoder with a KV cache on the device, and the memory wall (内存墙).
// Seed §10.2.2. Prefill runs GEMMs; every decode step is a chain of GEMVs that must stream all the
// weights from HBM for one token, so the step time is bytes / bandwidth, and the measure of a
// decoder is the share of the bandwidth it reaches. With --chat it is a chat program: the reply
// streams to the terminal token by token, greedy or sampled, with its TTFT and TPOT at the end.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "bench.hpp"
#include "common/cli.hpp"
#include "common/compare.hpp"
#include "common/cost_model.hpp"
#include "common/error.hpp"
#include "common/interrupt.hpp"
#include "common/metrics.hpp"
#include "common/model_source.hpp"
#include "common/random.hpp"
#include "common/sampler.hpp"
#include "common/timing.hpp"
#include "cpu_reference/generation.hpp"
#include "cpu_reference/text.hpp"
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
  std::string chat;                // --chat: a user message; the reply is streamed
  int max_new_tokens = 0;          // 0: 32 for the narrated run; a chat runs to its end
  std::string precision = "bf16";  // --precision of the chat decoder
  int prefill_chunk = 0;           // --prefill-chunk: the prompt in chunks of this many tokens
  lab::SamplerSettings sampler{0.0, 0, 1.0, 0.0, 1.0, 0};  // temperature 0: greedy
  BenchOptions bench_options;                              // --context, --steps, --bench-model
};

// --- The narrated run: the decoder against chapter 4, on the model given by --model. ---
int narrate(const Options& o, nlohmann::json& out) {
  const lab::LoadedModel model = lab::load_text_model(o.common.model, o.common.seed);
  const lab::ModelConfig& c = model.weights.config;
  std::printf("model: %s\n", lab::describe(c).c_str());
  const std::vector<int> prompt = model.tokenizer->encode(o.prompt);
  lab::require(!prompt.empty(), "--prompt: the prompt is empty");
  lab::require_context(c, prompt.size(), o.max_new_tokens, "--max-new-tokens");
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
    options.prefill_chunk = o.prefill_chunk;
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

// --- Chat: the real use of the decoder. The reply streams as it is generated. ---
int chat(const Options& o, nlohmann::json& out) {
  const lab::LoadedModel model = lab::load_text_model(o.common.model, o.common.seed);
  const lab::ModelConfig& c = model.weights.config;
  const lab::Tokenizer& tok = *model.tokenizer;
  // The user's message in the model's chat template (ChatML for SmolLM2), as chapters 4 and 5 do.
  const std::vector<int> prompt = lab::cpu::prompt_tokens(tok, "", o.chat);
  // Without --max-new-tokens the reply runs to the end of the turn, at most 256 tokens or what is
  // left of the context; a limit the user gives must fit.
  const int room = c.max_seq_len - static_cast<int>(prompt.size()) + 1;
  const int max_new = o.max_new_tokens > 0 ? o.max_new_tokens : std::clamp(room, 1, 256);
  lab::require_context(c, prompt.size(), max_new, "--max-new-tokens");
  DecoderOptions options;
  options.precision = lab::cuda::parse_decoder_precision(o.precision);
  options.capacity = static_cast<int>(prompt.size()) + max_new;
  options.prefill_chunk = o.prefill_chunk;
  Decoder gpu(model.weights, options);
  const bool greedy = o.sampler.temperature == 0;
  std::printf("model: %s, %s on the GPU\n%s, up to %d new tokens\n\n", lab::describe(c).c_str(),
              lab::cuda::to_string(options.precision).c_str(),
              greedy ? "greedy (argmax on the GPU)" : lab::describe(o.sampler).c_str(), max_new);
  std::printf("user: %s\nassistant: ", o.chat.c_str());
  std::fflush(stdout);

  //! [chat_stream]
  lab::cpu::TextStream stream(tok);
  std::vector<int> reply;
  std::vector<double> arrivals;  // seconds from the request's start to each token
  bool end_of_turn = false;
  lab::catch_interrupts();  // Ctrl-C: stop after this token, print the metrics, exit 130
  const lab::Stopwatch request;
  // Shows one token as soon as it exists; false stops the generation.
  auto show = [&](int id) {
    arrivals.push_back(request.seconds());
    if (tok.is_end_of_generation(id)) {  // <|im_end|>: the model ended its turn
      end_of_turn = true;
      return false;
    }
    reply.push_back(id);
    std::fputs(stream.push(id).c_str(), stdout);
    std::fflush(stdout);
    return !lab::interrupted();
  };
  if (greedy) {
    // Argmax on the device; each decode step replays one CUDA graph, and `show` costs one copy of
    // the chosen token back to the host.
    gpu.generate_greedy(prompt, max_new, /*use_graph=*/true, show);
  } else {
    // Sampling on the host: each step copies the logits back (V floats) for chapter 5's sampler.
    lab::Sampler sampler(o.sampler);
    std::vector<int> history = prompt;                // for the repetition penalty
    std::vector<float> logits = gpu.forward(prompt);  // prefill, (V)
    for (int step = 0;; ++step) {
      const int id = sampler.sample(logits, history);
      history.push_back(id);
      if (!show(id) || step + 1 == max_new) break;
      logits = gpu.forward(std::span<const int>(&id, 1));  // one decode step, (V)
    }
  }
  //! [chat_stream]
  std::printf("\n\n");
  if (lab::interrupted()) {
    std::printf("%s\n", lab::describe_interruption(arrivals).c_str());
    return lab::kExitInterrupted;
  }
  if (end_of_turn)
    std::printf("stopped: the model ended its turn\n");
  else
    std::printf("stopped: %d tokens, before the end of the turn\n", max_new);
  out = {{"model", lab::describe(c)},
         {"precision", lab::cuda::to_string(options.precision)},
         {"sampler", greedy ? "greedy" : lab::describe(o.sampler)},
         {"prompt_tokens", prompt.size()},
         {"reply_tokens", reply},
         {"reply", tok.decode(reply)},
         {"end_of_turn", end_of_turn}};
  if (!o.common.doc) {  // timings are machine-dependent: --doc leaves them out
    const lab::LatencyMetrics m = lab::latency_metrics(arrivals);
    std::printf("%s\n", lab::describe(m).c_str());
    out["metrics"] = {{"ttft", m.ttft},
                      {"tpot", m.tpot},
                      {"itl_p50", m.itl_p50},
                      {"itl_p99", m.itl_p99},
                      {"throughput", m.throughput}};
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Chapter 8: the GPU decoder with a KV cache, and the memory wall"};
  app.name("ch08_cuda_kv_cache");
  lab::add_common_options(app, o.common);
  auto* bench =
      app.add_flag("--bench", o.bench, "measure decode tokens/s and bandwidth (H100 shapes)");
  app.add_option("--prompt", o.prompt, "prompt text");
  app.add_option("--chat", o.chat,
                 "chat: a user message put through the model's chat template; the reply streams")
      ->excludes(bench);
  app.add_option("--max-new-tokens", o.max_new_tokens,
                 "tokens to generate (default 32; a --chat reply runs to its end of turn, at "
                 "most 256 or what the context holds)")
      ->check(CLI::Range(1, 4096));
  app.add_option("--precision", o.precision, "storage of the chat decoder's weights and cache")
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->capture_default_str();
  app.add_option("--prefill-chunk", o.prefill_chunk,
                 "run the prompt in chunks of this many tokens (1: through the decode kernels, "
                 "no GEMM; 0 = one call)")
      ->check(CLI::Range(0, 32768));
  // Sampling for --chat, as in chapter 5 (ranges checked by lab::validate, naming the flag).
  app.add_option("--temperature", o.sampler.temperature,
                 "chat: softmax temperature, >= 0 (0 = greedy on the GPU)")
      ->capture_default_str();
  app.add_option("--top-k", o.sampler.top_k, "chat: keep the k most likely tokens (0 = off)");
  app.add_option("--top-p", o.sampler.top_p, "chat: keep the smallest set with mass >= p");
  app.add_option("--min-p", o.sampler.min_p, "chat: keep tokens with p >= min-p x max p");
  app.add_option("--repetition-penalty", o.sampler.repetition_penalty, "chat: > 0; 1 = off");
  app.add_option("--context", o.bench_options.context, "context length of the decode benchmark")
      ->check(CLI::Range(2, 32768));
  app.add_option("--steps", o.bench_options.steps, "timed decode steps")
      ->check(CLI::Range(1, 4096));
  app.add_option("--bench-model", o.bench_options.model, "preset for the decode benchmark")
      ->check(CLI::IsMember(lab::preset_names()));
  if (auto code = lab::parse_command_line(app, argc, argv)) return *code;
  const bool chatting = !o.chat.empty();
  if (o.max_new_tokens == 0 && !chatting) o.max_new_tokens = 32;
  o.sampler.seed = o.common.seed;
  return lab::run_main("ch08_cuda_kv_cache", [&] {
    if (chatting) lab::validate(o.sampler);  // bad settings fail before the GPU is looked at
    const auto info = lab::cuda::require_device();
    if (!o.common.doc) std::printf("device: %s\n", lab::cuda::describe(info).c_str());
    nlohmann::json out;
    const int code = o.bench    ? run_bench(o.bench_options, out)
                     : chatting ? chat(o, out)
                                : narrate(o, out);
    if (!o.common.json_path.empty()) lab::write_json(o.common.json_path, out);
    return code;
  });
}
