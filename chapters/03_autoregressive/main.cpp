// Chapter 3: autoregressive generation (自回归) without a cache. Every step feeds the model's own
// previous output back in and re-runs the whole prefix, so step i costs a pass over i tokens and n
// steps cost O(n²) token-passes (seed §10.1.1). Each step is checked against chapter 2: its logits
// must equal the teacher-forced logits at that position of the final sequence.
#include <algorithm>
#include <cstdio>
#include <string>

#include "common/cli.hpp"
#include "common/compare.hpp"
#include "common/cost_model.hpp"
#include "common/error.hpp"
#include "common/format.hpp"
#include "common/interrupt.hpp"
#include "common/model_source.hpp"
#include "cpu_reference/generation.hpp"
#include "cpu_reference/text.hpp"

namespace {

struct Options {
  lab::CommonOptions common;
  std::string prompt = "Once upon a time";
  std::string chat;
  int steps = 16;
};

int run(const Options& o) {
  lab::cpu::set_num_threads(o.common.threads);
  const lab::LoadedModel loaded = lab::load_text_model(o.common.model, o.common.seed);
  const lab::ModelConfig& c = loaded.weights.config;
  const lab::Tokenizer& tok = *loaded.tokenizer;
  std::printf("model: %s\n", lab::describe(c).c_str());
  const std::vector<int> prompt = lab::cpu::prompt_tokens(tok, o.prompt, o.chat);
  // The last step runs over prompt + steps − 1 tokens: refuse up front what the model cannot hold
  // rather than stop half-way through the text.
  lab::require_context(c, prompt.size(), o.steps, "--steps");
  std::printf("prompt: %zu tokens, generating up to %d greedily (argmax)\n\n", prompt.size(),
              o.steps);

  // 1. Generate: each step re-runs the whole sequence and appends its argmax.
  const lab::cpu::Transformer<float> model(loaded.weights);
  lab::cpu::TextStream stream(tok);
  lab::cpu::GenerationOptions go;
  go.max_new_tokens = o.steps;
  // Ctrl-C stops after the current token (common/interrupt.hpp).
  lab::catch_interrupts();
  go.is_stop = [&tok](int id) { return tok.is_end_of_generation(id) || lab::interrupted(); };
  go.on_token = [&stream, &tok](int id) {
    if (tok.is_end_of_generation(id)) return;  // the stop token is not part of the text
    std::fputs(stream.push(id).c_str(), stdout);
    std::fflush(stdout);  // stream: show each token as soon as it exists
  };
  std::printf("generated: ");
  const lab::cpu::Generation g =
      lab::cpu::generate_without_cache(model, prompt, go, lab::cpu::argmax);
  std::printf("\n\n");
  if (lab::interrupted()) {  // the text so far is printed; add what it cost, and stop
    std::vector<double> arrival;
    double t = 0;
    for (double s : g.step_seconds) arrival.push_back(t += s);
    std::printf("%s\n", lab::describe_interruption(arrival).c_str());
    return lab::kExitInterrupted;
  }

  // 2. Check against chapter 2: one teacher-forced pass over the final sequence.
  const lab::cpu::Matrix<float> tf = model.forward(g.tokens);  // (len, V)
  const auto V = static_cast<std::size_t>(c.vocab_size);
  const lab::Tolerance tol = lab::tolerance_for(
      lab::DType::FP32,
      std::max<std::int64_t>(c.intermediate_size, static_cast<std::int64_t>(g.tokens.size())),
      2 * c.num_layers + 1);
  std::printf("== Step i vs teacher-forced row i (tolerance %.1e: %s) ==\n", tol.rel_l2,
              tol.reason.c_str());
  if (o.common.doc)
    std::printf("%4s %8s %-10s %10s %14s\n", "step", "context", "token", "rel L2", "FLOPs");
  else
    std::printf("%4s %8s %-10s %10s %14s %10s\n", "step", "context", "token", "rel L2", "FLOPs",
                "ms");
  nlohmann::json steps = nlohmann::json::array();
  bool all_passed = true;
  double total_flops = 0;
  for (std::size_t s = 0; s < g.logits.size(); ++s) {
    const std::size_t context = g.prompt_length + s;  // tokens this step ran over
    const std::span<const float> ref(tf.row(static_cast<Eigen::Index>(context - 1)).data(), V);
    const lab::CompareResult r = lab::compare(ref, std::span<const float>(g.logits[s]), tol, V);
    all_passed = all_passed && r.passed && r.argmax_agreement == 1.0;
    // A no-cache step is a prefill of the whole context that keeps only the last logits.
    const double flops =
        lab::total(lab::model_costs(c, lab::prefill_workload(static_cast<std::int64_t>(context), 1,
                                                             lab::DType::FP32)))
            .flops;
    total_flops += flops;
    const int token = g.tokens[context];
    if (o.common.doc)
      std::printf("%4zu %8zu %-10s %10.2e %14s\n", s, context,
                  lab::cpu::token_label(tok, token).c_str(), r.rel_l2,
                  lab::format_si(flops).c_str());
    else
      std::printf("%4zu %8zu %-10s %10.2e %14s %10.3f\n", s, context,
                  lab::cpu::token_label(tok, token).c_str(), r.rel_l2,
                  lab::format_si(flops).c_str(), 1e3 * g.step_seconds[s]);
    steps.push_back({{"step", s},
                     {"context", context},
                     {"token", token},
                     {"rel_l2", r.rel_l2},
                     {"flops", flops},
                     {"seconds", o.common.doc ? 0.0 : g.step_seconds[s]}});
  }
  std::printf("all steps match chapter 2: %s\n\n", all_passed ? "yes" : "NO");

  // 3. The quadratic bill: n steps re-read the prefix n times.
  const double n = static_cast<double>(g.logits.size()), p = static_cast<double>(g.prompt_length);
  const double token_passes = n * p + n * (n - 1) / 2;  // Σ (p + s), s = 0..n-1
  std::printf("== Cost growth ==\n");
  std::printf(
      "token-passes: %.0f for %.0f new tokens (a KV cache needs %.0f: prompt once, then 1 per "
      "step)\n",
      token_passes, n, p + n - 1);
  std::printf("FLOPs: %s in total, %.1fx the first step's %s\n",
              lab::format_si(total_flops).c_str(),
              total_flops / std::max(1.0, steps.empty() ? 1.0 : steps[0]["flops"].get<double>()),
              steps.empty() ? "0" : lab::format_si(steps[0]["flops"].get<double>()).c_str());
  if (!o.common.json_path.empty())
    lab::write_json(o.common.json_path, {{"model", lab::describe(c)},
                                         {"tokens", g.tokens},
                                         {"steps", steps},
                                         {"matches_teacher_forcing", all_passed}});
  if (!all_passed) throw lab::Error("a step disagrees with the teacher-forced logits");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Chapter 3: autoregressive generation without a cache"};
  app.name("ch03_autoregressive");
  Options o;
  lab::add_common_options(app, o.common);
  app.add_option("--prompt", o.prompt, "Prompt text (after the BOS token when the model wants one)")
      ->capture_default_str();
  app.add_option("--chat", o.chat, "A user message, put through the model's chat template");
  app.add_option("--steps", o.steps, "Tokens to generate")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  if (auto code = lab::parse_command_line(app, argc, argv)) return *code;
  return lab::run_main(app.get_name(), [&] { return run(o); });
}
