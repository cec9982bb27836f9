// Chapter 4: the KV cache (KV 缓存). Prefill (预填充) runs the prompt once and stores every layer's
// keys and values; each decode step then runs only the newest token against the cache (seed
// §10.2.1). Checked token for token against chapter 3. With a bidirectional mask (双向注意力) the
// cached K/V go stale and the two disagree, which is why encoders cannot use a KV cache.
#include <algorithm>
#include <cstdio>
#include <sstream>
#include <string>

#include "common/cli.hpp"
#include "common/compare.hpp"
#include "common/cost_model.hpp"
#include "common/error.hpp"
#include "common/format.hpp"
#include "common/interrupt.hpp"
#include "common/metrics.hpp"
#include "common/model_source.hpp"
#include "cpu_reference/benchmark.hpp"
#include "cpu_reference/generation.hpp"
#include "cpu_reference/text.hpp"

namespace {

using lab::cpu::AttentionMask;

struct Options {
  lab::CommonOptions common;
  std::string prompt = "Once upon a time";
  std::string chat;
  int steps = 16;
  int cache_tokens = 0;  // 0: exactly what the prompt and the steps need
  std::string mask = "causal";
  bool bench = false;
  std::string bench_models = "tiny,smollm2-135m";
  int bench_prompt = 256;
  int bench_decode = 32;
};

// Runs the no-cache loop over the cached run's tokens: the same prefixes, so step s of both saw
// exactly the same input. Returns the worst relative L2 over the steps and the argmax agreement.
struct StepCheck {
  std::vector<double> rel_l2;
  bool tokens_agree = true;
  bool passed = true;
};
StepCheck recompute_without_cache(const lab::cpu::Transformer<float>& model,
                                  const lab::cpu::Generation& cached, AttentionMask mask,
                                  const lab::Tolerance& tol) {
  std::vector<int> prompt(
      cached.tokens.begin(),
      cached.tokens.begin() + static_cast<std::ptrdiff_t>(cached.prompt_length));
  StepCheck check;
  std::size_t step = 0;
  lab::cpu::GenerationOptions go;
  go.max_new_tokens = static_cast<int>(cached.logits.size());
  go.mask = mask;
  go.is_stop = [](int) { return lab::interrupted(); };  // O(n²): Ctrl-C must not wait for it
  const auto V = static_cast<std::size_t>(model.config().vocab_size);
  (void)lab::cpu::generate_without_cache(model, prompt, go, [&](std::span<const float> row) {
    const lab::CompareResult r =
        lab::compare(std::span<const float>(cached.logits[step]), row, tol, V);
    check.rel_l2.push_back(r.rel_l2);
    check.passed = check.passed && r.passed;
    const int token = cached.tokens[cached.prompt_length + step++];
    check.tokens_agree = check.tokens_agree && lab::cpu::argmax(row) == token;
    return token;  // follow the cached run
  });
  return check;
}

nlohmann::json run_bench(const Options& o) {
  nlohmann::json out;
  std::printf("== Benchmark (%d threads) ==\n", lab::cpu::num_threads());
  const double bandwidth = lab::cpu::measure_read_bandwidth();
  const double gemm = lab::cpu::measure_gemm_peak();
  std::printf(
      "machine: read bandwidth %.1f GB/s (streaming sum), Eigen fp32 GEMM peak %.1f GFLOP/s\n",
      bandwidth / 1e9, gemm / 1e9);
  out["read_bandwidth"] = bandwidth;
  out["gemm_peak_flops"] = gemm;
  out["threads"] = lab::cpu::num_threads();
  std::stringstream names(o.bench_models);
  std::string name;
  while (std::getline(names, name, ',')) {
    const lab::LoadedModel m = lab::load_model(name, o.common.seed);
    const lab::cpu::Transformer<float> model(m.weights);
    const int prompt = std::min(o.bench_prompt, m.weights.config.max_seq_len - o.bench_decode);
    const lab::cpu::DecoderBenchmark b = lab::cpu::benchmark_decoder(model, prompt, o.bench_decode);
    const double prefill_rate = b.prefill_flops / b.prefill_seconds;
    const double decode_bw = b.decode_bytes / b.decode_seconds;
    std::printf(
        "%s:\n  prefill %d tokens: %.1f tok/s, %.1f GFLOP/s = %.0f%% of GEMM peak (target >= "
        "50%%)\n",
        name.c_str(), prompt, b.prefill_tokens_per_second(), prefill_rate / 1e9,
        100 * prefill_rate / gemm);
    std::printf(
        "  decode: %.1f tok/s, %s read per token, %.1f GB/s = %.0f%% of read bandwidth (target >= "
        "70%%)%s\n",
        b.decode_tokens_per_second(), lab::format_bytes(b.decode_bytes).c_str(), decode_bw / 1e9,
        100 * decode_bw / bandwidth,
        b.decode_bytes < 64e6 ? " [fits in cache: not a memory test]" : "");
    out["models"].push_back({{"model", name},
                             {"prompt_tokens", prompt},
                             {"prefill_tokens_per_second", b.prefill_tokens_per_second()},
                             {"prefill_flops_per_second", prefill_rate},
                             {"prefill_share_of_gemm_peak", prefill_rate / gemm},
                             {"decode_tokens_per_second", b.decode_tokens_per_second()},
                             {"decode_bytes_per_token", b.decode_bytes},
                             {"decode_bandwidth", decode_bw},
                             {"decode_share_of_read_bandwidth", decode_bw / bandwidth}});
  }
  return out;
}

int run(const Options& o) {
  lab::cpu::set_num_threads(o.common.threads);
  if (o.bench) {
    const nlohmann::json out = run_bench(o);
    if (!o.common.json_path.empty()) lab::write_json(o.common.json_path, out);
    return 0;
  }
  const AttentionMask mask = lab::cpu::parse_attention_mask(o.mask);
  const lab::LoadedModel loaded = lab::load_text_model(o.common.model, o.common.seed);
  const lab::ModelConfig& c = loaded.weights.config;
  const lab::Tokenizer& tok = *loaded.tokenizer;
  const std::vector<int> prompt = lab::cpu::prompt_tokens(tok, o.prompt, o.chat);
  // Positions beyond the model's context are refused up front, not discovered half-way through.
  lab::require_context(c, prompt.size(), o.steps, "--steps");
  std::printf("model: %s\nprompt: %zu tokens, up to %d new, %s mask\n\n", lab::describe(c).c_str(),
              prompt.size(), o.steps, o.mask.c_str());

  // 1. The cache: allocated once for the whole generation.
  const int capacity =
      o.cache_tokens > 0 ? o.cache_tokens : static_cast<int>(prompt.size()) + o.steps;
  lab::cpu::KVCache<float> cache(c, capacity);
  const auto per_token = lab::kv_cache_bytes_per_token(c, lab::DType::FP32);
  std::printf("== KV cache ==\nper token: 2 x %d layers x %d kv heads x %d dims x 4 B = %s B\n",
              c.num_layers, c.num_kv_heads, c.head_dim, lab::with_commas(per_token).c_str());
  std::printf("capacity %d tokens: %s allocated\n\n", capacity,
              lab::format_bytes(static_cast<double>(cache.bytes())).c_str());

  // Asking for more context than the cache holds is an error up front, not a surprise mid-way.
  const std::size_t needed = prompt.size() + static_cast<std::size_t>(o.steps) - 1;
  lab::require(needed <= static_cast<std::size_t>(capacity),
               "--cache-tokens: the prompt (" + std::to_string(prompt.size()) + " tokens) and " +
                   std::to_string(o.steps) + " new tokens need " + std::to_string(needed) +
                   " cache slots, the cache holds " + std::to_string(capacity));

  // 2. Prefill + decode, streaming the text.
  const lab::cpu::Transformer<float> model(loaded.weights);
  lab::cpu::TextStream stream(tok);
  lab::cpu::GenerationOptions go;
  go.max_new_tokens = o.steps;
  go.mask = mask;
  // Ctrl-C stops after the current token (common/interrupt.hpp).
  lab::catch_interrupts();
  go.is_stop = [&tok](int id) { return tok.is_end_of_generation(id) || lab::interrupted(); };
  go.on_token = [&stream, &tok](int id) {
    if (tok.is_end_of_generation(id)) return;  // the stop token is not part of the text
    std::fputs(stream.push(id).c_str(), stdout);
    std::fflush(stdout);
  };
  std::printf("generated: ");
  const lab::cpu::Generation g =
      lab::cpu::generate_with_cache(model, cache, prompt, go, lab::cpu::argmax);
  std::printf("\n\n");
  // Token arrival times: the first waits for the prefill, each later one for one decode step.
  std::vector<double> arrival;
  double t = 0;
  for (double s : g.step_seconds) arrival.push_back(t += s);
  if (lab::interrupted()) {  // the text so far is printed; add what it cost, and stop
    std::printf("%s\n", lab::describe_interruption(arrival).c_str());
    return lab::kExitInterrupted;
  }

  // 3. Against chapter 3 (recompute everything each step), for this mask and for the other one.
  const lab::Tolerance tol = lab::tolerance_for(
      lab::DType::FP32,
      std::max<std::int64_t>(c.intermediate_size, static_cast<std::int64_t>(g.tokens.size())),
      2 * c.num_layers + 1);
  const StepCheck same = recompute_without_cache(model, g, mask, tol);
  if (lab::interrupted()) {  // Ctrl-C during the check: the generation itself was complete
    std::printf("%s\n", lab::describe_interruption(arrival).c_str());
    return lab::kExitInterrupted;
  }
  std::printf("== Cached vs recomputed (chapter 3), %s mask ==\n", o.mask.c_str());
  std::printf("tokens agree: %s; worst step rel L2 %.2e (tolerance %.1e: %s)\n",
              same.tokens_agree ? "yes" : "no",
              *std::max_element(same.rel_l2.begin(), same.rel_l2.end()), tol.rel_l2,
              tol.reason.c_str());

  // The seed's point (§10.2.1): feed the same tokens through a cache built under each mask.
  const AttentionMask other =
      mask == AttentionMask::Causal ? AttentionMask::Bidirectional : AttentionMask::Causal;
  lab::cpu::KVCache<float> cache2(c, capacity);
  lab::cpu::GenerationOptions replay = go;
  replay.mask = other;
  replay.on_token = nullptr;
  // Replay exactly the tokens above: stop where it stopped, whatever Ctrl-C does from here on.
  replay.max_new_tokens = static_cast<int>(g.tokens.size() - g.prompt_length);
  replay.is_stop = nullptr;
  std::size_t next = 0;
  const lab::cpu::Generation g2 = lab::cpu::generate_with_cache(
      model, cache2, prompt, replay,
      [&](std::span<const float>) { return g.tokens[g.prompt_length + next++]; });
  const StepCheck flipped = recompute_without_cache(model, g2, other, tol);
  if (lab::interrupted()) {
    std::printf("%s\n", lab::describe_interruption(arrival).c_str());
    return lab::kExitInterrupted;
  }
  const StepCheck& causal = mask == AttentionMask::Causal ? same : flipped;
  const StepCheck& bidir = mask == AttentionMask::Causal ? flipped : same;
  std::printf("\nrel L2 of cached vs recomputed logits, step by step:\n%4s %12s %14s\n", "step",
              "causal", "bidirectional");
  const std::size_t shown = std::min<std::size_t>(causal.rel_l2.size(), 10);
  for (std::size_t s = 0; s < shown; ++s)
    std::printf("%4zu %12.2e %14.2e\n", s, causal.rel_l2[s], bidir.rel_l2[s]);
  if (shown < causal.rel_l2.size()) std::printf(" ... (%zu steps in all)\n", causal.rel_l2.size());
  std::printf(
      "step 0 is the prefill: both masks see the whole prompt. After it, a bidirectional model\n"
      "would change the old tokens' K/V, so the cached ones are stale.\n\n");

  nlohmann::json out = {{"model", lab::describe(c)},
                        {"mask", o.mask},
                        {"tokens", g.tokens},
                        {"kv_bytes_per_token", per_token},
                        {"kv_bytes_allocated", cache.bytes()},
                        {"causal_rel_l2", causal.rel_l2},
                        {"bidirectional_rel_l2", bidir.rel_l2},
                        {"matches_chapter3", same.passed && same.tokens_agree}};
  // 4. Latency: the first token waits for the prefill, the rest for one decode step each.
  if (!o.common.doc) {
    const lab::LatencyMetrics m = lab::latency_metrics(arrival);
    std::printf("== Latency (%d threads) ==\n%s\n", lab::cpu::num_threads(),
                lab::describe(m).c_str());
    out["ttft"] = m.ttft;
    out["tpot"] = m.tpot;
  }
  if (!o.common.json_path.empty()) lab::write_json(o.common.json_path, out);
  if (mask == AttentionMask::Causal && !(same.passed && same.tokens_agree))
    throw lab::Error("the cached decoder disagrees with chapter 3");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Chapter 4: prefill and decode with a KV cache"};
  app.name("ch04_kv_cache");
  Options o;
  lab::add_common_options(app, o.common);
  app.add_option("--prompt", o.prompt, "Prompt text (after the BOS token when the model wants one)")
      ->capture_default_str();
  app.add_option("--chat", o.chat, "A user message, put through the model's chat template");
  app.add_option("--steps", o.steps, "Tokens to generate")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--cache-tokens", o.cache_tokens,
                 "KV cache capacity in tokens (0: prompt + steps)")
      ->check(CLI::Range(0, 1 << 24))
      ->capture_default_str();
  app.add_option("--mask", o.mask, "Attention mask")
      ->check(CLI::IsMember({"causal", "bidirectional"}))
      ->capture_default_str();
  app.add_flag("--bench", o.bench,
               "Measure prefill/decode tok/s against this machine's bandwidth and GEMM peak");
  app.add_option("--bench-models", o.bench_models, "Comma-separated models for --bench")
      ->capture_default_str();
  app.add_option("--bench-prompt", o.bench_prompt, "Prefill length for --bench")
      ->check(CLI::Range(1, 8192))
      ->capture_default_str();
  app.add_option("--bench-decode", o.bench_decode, "Decode steps for --bench")
      ->check(CLI::Range(1, 8192))
      ->capture_default_str();
  if (auto code = lab::parse_command_line(app, argc, argv)) return *code;
  return lab::run_main(app.get_name(), [&] { return run(o); });
}
