// Chapter 5: choosing tokens and measuring a generation. Greedy decoding takes the argmax; sampling
// draws from a filtered softmax (temperature, top-k, top-p, min-p, repetition penalty) with a
// seeded generator, so a seed reproduces a text exactly. Then the seed's metrics (§10.2): TTFT
// (首标记生成时间), per-token latency (延迟) and throughput (吞吐量), and why they differ.
#include <algorithm>
#include <cstdio>
#include <string>

#include "common/cli.hpp"
#include "common/error.hpp"
#include "common/interrupt.hpp"
#include "common/metrics.hpp"
#include "common/model_source.hpp"
#include "common/sampler.hpp"
#include "common/timing.hpp"
#include "cpu_reference/generation.hpp"
#include "cpu_reference/text.hpp"

namespace {

struct Options {
  lab::CommonOptions common;
  std::string prompt = "Once upon a time";
  std::string chat;
  int steps = 24;
  int requests = 4;
  lab::SamplerSettings sampler{0.8, 40, 0.95, 0.0, 1.0, 0};
};

struct Run {
  lab::cpu::Generation generation;
  std::vector<double> arrivals;  // seconds from the request's start to each token
};

// One request: prefill + decode with a KV cache, tokens chosen by `settings`, optionally streamed.
Run generate(const lab::cpu::Transformer<float>& model, const lab::Tokenizer& tok,
             const std::vector<int>& prompt, int steps, const lab::SamplerSettings& settings,
             bool stream_to_stdout, const lab::Stopwatch& since) {
  lab::Sampler sampler(settings);
  lab::cpu::KVCache<float> cache(model.config(), static_cast<int>(prompt.size()) + steps);
  lab::cpu::TextStream stream(tok);
  Run run;
  std::vector<int> history = prompt;  // the repetition penalty looks at prompt and output
  lab::cpu::GenerationOptions go;
  go.max_new_tokens = steps;
  go.keep_logits = false;
  // Ctrl-C stops after the current token (common/interrupt.hpp).
  go.is_stop = [&tok](int id) { return tok.is_end_of_generation(id) || lab::interrupted(); };
  go.on_token = [&](int id) {
    run.arrivals.push_back(since.seconds());
    history.push_back(id);
    if (stream_to_stdout && !tok.is_end_of_generation(id)) {
      std::fputs(stream.push(id).c_str(), stdout);
      std::fflush(stdout);  // the user sees each token when it exists: that is what TTFT measures
    }
  };
  //! [sampled_generation]
  run.generation = lab::cpu::generate_with_cache(
      model, cache, prompt, go,
      [&](std::span<const float> logits) { return sampler.sample(logits, history); });
  //! [sampled_generation]
  return run;
}

int run(Options o) {
  lab::cpu::set_num_threads(o.common.threads);
  o.sampler.seed = o.common.seed;
  lab::validate(o.sampler);  // bad settings fail before the model loads
  const lab::LoadedModel loaded = lab::load_text_model(o.common.model, o.common.seed);
  const lab::ModelConfig& c = loaded.weights.config;
  const lab::Tokenizer& tok = *loaded.tokenizer;
  const std::vector<int> prompt = lab::cpu::prompt_tokens(tok, o.prompt, o.chat);
  // Positions beyond the model's context are refused up front, not discovered half-way through.
  lab::require_context(c, prompt.size(), o.steps, "--steps");
  const lab::cpu::Transformer<float> model(loaded.weights);
  std::printf("model: %s\nprompt: %zu tokens\nsampler: %s\n\n", lab::describe(c).c_str(),
              prompt.size(), lab::describe(o.sampler).c_str());

  // 1. What each filter keeps of the first distribution (the logits after the prefill).
  lab::cpu::KVCache<float> cache(c, static_cast<int>(prompt.size()));
  const lab::cpu::Matrix<float> first = model.forward(prompt, cache);  // (1, V)
  const std::span<const float> z(first.data(), static_cast<std::size_t>(first.size()));
  const std::vector<double> plain = lab::softmax(z);
  const std::vector<double> tempered = lab::softmax(z, std::max(o.sampler.temperature, 1e-6));
  const std::vector<double> final_p = lab::sampling_distribution(z, o.sampler, prompt);
  const auto kept = std::count_if(final_p.begin(), final_p.end(), [](double p) { return p > 0; });
  std::printf("== The first token's distribution (V = %d) ==\n", c.vocab_size);
  std::printf("top-k keeps %zu, top-p keeps %zu, min-p keeps %zu, together: %td tokens\n",
              lab::top_k_set(tempered, o.sampler.top_k).size(),
              lab::top_p_set(tempered, o.sampler.top_p).size(),
              lab::min_p_set(tempered, o.sampler.min_p).size(), kept);
  std::printf("%-12s %10s %12s %12s\n", "token", "softmax", "after temp", "sampled from");
  for (int id : lab::top_k_set(plain, 6))
    std::printf("%-12s %10.4f %12.4f %12.4f\n", lab::cpu::token_label(tok, id).c_str(),
                plain[static_cast<std::size_t>(id)], tempered[static_cast<std::size_t>(id)],
                final_p[static_cast<std::size_t>(id)]);
  std::printf("\n");

  // 2. Generate, streaming tokens as they come.
  std::printf("== Sampled (seed %llu) ==\n", static_cast<unsigned long long>(o.sampler.seed));
  lab::catch_interrupts();
  lab::Stopwatch request;
  const Run main_run = generate(model, tok, prompt, o.steps, o.sampler, true, request);
  std::printf("\n\n");
  // After Ctrl-C: the text so far is on the screen; add the metrics of the request and stop.
  auto report_interruption = [&main_run] {
    std::printf("%s\n", lab::describe_interruption(main_run.arrivals).c_str());
    return lab::kExitInterrupted;
  };
  if (lab::interrupted()) return report_interruption();

  // 3. Reproducibility: the same seed gives the same tokens; another seed, another text.
  const lab::Stopwatch unused;
  const Run again = generate(model, tok, prompt, o.steps, o.sampler, false, unused);
  lab::SamplerSettings other = o.sampler;
  other.seed = o.sampler.seed + 1;
  const Run different = generate(model, tok, prompt, o.steps, other, false, unused);
  lab::SamplerSettings greedy = o.sampler;
  greedy.temperature = 0;
  const Run argmax = generate(model, tok, prompt, o.steps, greedy, false, unused);
  if (lab::interrupted()) return report_interruption();  // the runs above were cut short
  auto text = [&](const Run& r) {
    const auto& t = r.generation.tokens;
    return lab::cpu::printable(
        tok.decode({t.begin() + static_cast<std::ptrdiff_t>(r.generation.prompt_length), t.end()}));
  };
  const bool reproducible = again.generation.tokens == main_run.generation.tokens;
  std::printf("same seed again:  %s\n", reproducible ? "identical tokens" : "DIFFERENT tokens");
  std::printf("seed %llu:         %s\n", static_cast<unsigned long long>(other.seed),
              text(different).c_str());
  std::printf("greedy:           %s\n\n", text(argmax).c_str());

  nlohmann::json out = {{"model", lab::describe(c)},
                        {"sampler", lab::describe(o.sampler)},
                        {"tokens", main_run.generation.tokens},
                        {"reproducible", reproducible}};
  // 4. Metrics. A timing is machine-dependent, so --doc leaves this part out.
  if (o.common.doc) {
    std::printf("(latency and throughput are measured when run without --doc)\n");
  } else {
    const lab::LatencyMetrics m = lab::latency_metrics(main_run.arrivals);
    std::printf("== Metrics of the request above (%d threads) ==\n%s\n\n", lab::cpu::num_threads(),
                lab::describe(m).c_str());
    out["metrics"] = {{"ttft", m.ttft},
                      {"tpot", m.tpot},
                      {"itl_p50", m.itl_p50},
                      {"itl_p99", m.itl_p99},
                      {"throughput", m.throughput}};
    // N requests arrive together and are served one after another: the server's throughput is
    // the same for all of them, but request k waits for the k − 1 before it (queueing).
    std::printf("== %d requests queued at t = 0, served one at a time ==\n", o.requests);
    std::printf("%8s %10s %10s %12s\n", "request", "TTFT ms", "TPOT ms", "finished ms");
    lab::Stopwatch server;
    int tokens = 0;
    nlohmann::json queue = nlohmann::json::array();
    for (int r = 0; r < o.requests; ++r) {
      lab::SamplerSettings s = o.sampler;
      s.seed = o.sampler.seed + static_cast<std::uint64_t>(r);
      const Run q = generate(model, tok, prompt, o.steps, s, false, server);
      if (lab::interrupted()) return report_interruption();
      const lab::LatencyMetrics qm = lab::latency_metrics(q.arrivals);
      tokens += qm.tokens;
      std::printf("%8d %10.2f %10.2f %12.2f\n", r, 1e3 * qm.ttft, 1e3 * qm.tpot, 1e3 * qm.total);
      queue.push_back({{"ttft", qm.ttft}, {"tpot", qm.tpot}, {"total", qm.total}});
    }
    const double elapsed = server.seconds();
    std::printf("server throughput %.1f tok/s; the last user waited %.1fx the first one's TTFT\n",
                tokens / elapsed,
                queue.back()["ttft"].get<double>() / queue.front()["ttft"].get<double>());
    out["queue"] = queue;
    out["queue_throughput"] = tokens / elapsed;
  }
  if (!o.common.json_path.empty()) lab::write_json(o.common.json_path, out);
  lab::require(reproducible, "the same seed gave different tokens");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Chapter 5: sampling and serving metrics"};
  app.name("ch05_sampling_and_metrics");
  Options o;
  lab::add_common_options(app, o.common);
  app.add_option("--prompt", o.prompt, "Prompt text (after the BOS token when the model wants one)")
      ->capture_default_str();
  app.add_option("--chat", o.chat, "A user message, put through the model's chat template");
  app.add_option("--steps", o.steps, "Tokens to generate")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--requests", o.requests, "Queued requests for the latency/throughput demo")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  // Ranges are checked by lab::validate(SamplerSettings), which names the flag and the rule.
  app.add_option("--temperature", o.sampler.temperature, "Softmax temperature, >= 0 (0 = greedy)")
      ->capture_default_str();
  app.add_option("--top-k", o.sampler.top_k, "Keep the k most likely tokens (0 = off)")
      ->capture_default_str();
  app.add_option("--top-p", o.sampler.top_p, "Keep the smallest set with mass >= p, p in (0, 1]")
      ->capture_default_str();
  app.add_option("--min-p", o.sampler.min_p, "Keep tokens with p >= min-p x max p, in [0, 1]")
      ->capture_default_str();
  app.add_option("--repetition-penalty", o.sampler.repetition_penalty, "> 0; 1 = off")
      ->capture_default_str();
  if (auto code = lab::parse_command_line(app, argc, argv)) return *code;
  return lab::run_main(app.get_name(), [&] { return run(o); });
}
