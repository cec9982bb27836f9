// Chapter 2: teacher forcing (教师强制). One forward pass over a whole known sequence with the
// causal mask gives the model's prediction at every position at once: the training-style pass of
// seed §10.1.1. From those logits: per-position predictions, cross-entropy and perplexity.
#include <algorithm>
#include <cstdio>
#include <string>

#include "common/cli.hpp"
#include "common/compare.hpp"
#include "common/cost_model.hpp"
#include "common/error.hpp"
#include "common/format.hpp"
#include "common/hf_export.hpp"
#include "common/model_source.hpp"
#include "common/sampler.hpp"
#include "common/timing.hpp"
#include "cpu_reference/loss.hpp"
#include "cpu_reference/text.hpp"
#include "cpu_reference/transformer.hpp"

namespace {

struct Options {
  lab::CommonOptions common;
  std::string text = "Hello, world!";
  std::string tokens;  // explicit ids instead of text
  int top = 3;
  std::string export_dir;  // write the model as a Hugging Face directory and stop
};

int run(const Options& o) {
  lab::cpu::set_num_threads(o.common.threads);
  const lab::LoadedModel loaded = lab::load_model(o.common.model, o.common.seed);
  const lab::ModelConfig& c = loaded.weights.config;
  std::printf("model: %s\n       %s\n", lab::describe(c).c_str(), loaded.source.c_str());
  if (!o.export_dir.empty()) {
    // The same weights, as HF transformers reads them: how the external references are made
    // (scripts/hf_logits_fixture.py runs LlamaForCausalLM on this directory).
    lab::export_hf_directory(loaded, o.export_dir);
    std::printf("exported as a Hugging Face directory (fp32): %s\n", o.export_dir.c_str());
    return 0;
  }

  // 1. The sequence: known text, so every position's "right answer" is the next token.
  const std::vector<int> ids = o.tokens.empty()
                                   ? lab::cpu::prompt_tokens(*loaded.tokenizer, o.text, "")
                                   : lab::cpu::parse_token_list(o.tokens, c.vocab_size);
  lab::require(ids.size() >= 2, "--text/--tokens: need at least two tokens to score a prediction");
  std::printf("sequence: %zu tokens\n\n", ids.size());

  // 2. One pass, causal mask: row i of the logits is P(token_{i+1} | tokens_0..i).
  const lab::cpu::Transformer<float> model(loaded.weights);
  const lab::cpu::Matrix<float> logits = model.forward(ids);  // (n, V)
  const std::vector<float> flat = lab::cpu::to_floats(logits);
  const auto V = static_cast<std::size_t>(c.vocab_size);
  const std::vector<double> losses = lab::cpu::token_losses(flat, V, ids);

  std::printf(
      "== Per-position predictions (teacher forcing: the input is always the true text) ==\n");
  std::printf("%4s %-10s %-10s %8s %7s  top-%d predictions\n", "pos", "input", "next", "p(next)",
              "loss", o.top);
  nlohmann::json rows = nlohmann::json::array();
  for (std::size_t i = 0; i + 1 < ids.size(); ++i) {
    const std::span<const float> row(flat.data() + i * V, V);
    const std::vector<double> p = lab::softmax(row);
    const std::vector<int> best = lab::top_k_set(p, o.top);
    std::string shown;
    for (int id : best) {
      char item[64];
      std::snprintf(item, sizeof item, " %s %.3f",
                    lab::cpu::token_label(*loaded.tokenizer, id).c_str(),
                    p[static_cast<std::size_t>(id)]);
      shown += item;
    }
    std::printf("%4zu %-10s %-10s %8.4f %7.3f %s\n", i,
                lab::cpu::token_label(*loaded.tokenizer, ids[i]).c_str(),
                lab::cpu::token_label(*loaded.tokenizer, ids[i + 1]).c_str(),
                p[static_cast<std::size_t>(ids[i + 1])], losses[i], shown.c_str());
    rows.push_back({{"position", i}, {"next", ids[i + 1]}, {"loss", losses[i]}, {"top", best}});
  }
  const double mean_loss =
      std::accumulate(losses.begin(), losses.end(), 0.0) / static_cast<double>(losses.size());
  std::printf("\ncross-entropy %.4f nats/token, perplexity %.2f (uniform guessing: %d)\n\n",
              mean_loss, lab::cpu::perplexity(losses), c.vocab_size);

  // 3. The same pass in fp64: how far fp32 rounding moves the logits (Appendix C).
  const std::vector<double> ref64 = lab::cpu::teacher_forced_logits_fp64(loaded.weights, ids);
  const std::vector<float> ref(ref64.begin(), ref64.end());
  const lab::Tolerance tol = lab::tolerance_for(
      lab::DType::FP32,
      std::max<std::int64_t>(c.intermediate_size, static_cast<std::int64_t>(ids.size())),
      2 * c.num_layers + 1);
  const lab::CompareResult check = lab::compare(ref, flat, tol, V);
  std::printf("== fp32 vs fp64 oracle ==\n%s\n(tolerance: %s)\n\n", lab::summary(check).c_str(),
              tol.reason.c_str());

  // 4. Cost of the pass from the shared cost model: every position at once, all logits.
  lab::Workload work =
      lab::prefill_workload(static_cast<std::int64_t>(ids.size()), 1, lab::DType::FP32);
  work.all_logits = true;
  const lab::OpCost cost = lab::total(lab::model_costs(c, work));
  std::printf("== Cost of one teacher-forced pass (n = %zu, fp32) ==\n", ids.size());
  std::printf("FLOPs %sFLOP (about 2 x params x n = %sFLOP), bytes %s, intensity %.1f FLOP/byte\n",
              lab::format_si(cost.flops).c_str(),
              lab::format_si(2.0 * static_cast<double>(c.parameter_count()) *
                             static_cast<double>(ids.size()))
                  .c_str(),
              lab::format_bytes(cost.bytes()).c_str(), cost.intensity());

  nlohmann::json out = {{"model", lab::describe(c)},
                        {"tokens", ids},
                        {"positions", rows},
                        {"cross_entropy", mean_loss},
                        {"perplexity", lab::cpu::perplexity(losses)},
                        {"fp64_rel_l2", check.rel_l2},
                        {"flops", cost.flops},
                        {"bytes", cost.bytes()}};
  if (!o.common.doc) {
    const lab::TimingStats t = lab::time_function([&] { (void)model.forward(ids); }, 1, 5);
    std::printf("measured: %.3f ms median of 5, %.2f GFLOP/s, %d threads\n", 1e3 * t.median,
                cost.flops / t.median / 1e9, lab::cpu::num_threads());
    out["seconds"] = t.median;
  }
  if (!check.passed)
    throw lab::Error("fp32 logits disagree with the fp64 oracle: " + lab::summary(check));
  if (!o.common.json_path.empty()) lab::write_json(o.common.json_path, out);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Chapter 2: teacher forcing, the training-style forward pass"};
  app.name("ch02_teacher_forcing");
  Options o;
  lab::add_common_options(app, o.common);
  app.add_option("--text", o.text, "Text to score (after the BOS token when the model wants one)")
      ->capture_default_str();
  app.add_option("--tokens", o.tokens, "Token ids to score instead, e.g. 256,72,105");
  app.add_option("--top", o.top, "Predictions shown per position")
      ->check(CLI::Range(1, 10))
      ->capture_default_str();
  app.add_option("--export-hf", o.export_dir,
                 "Write the model as a Hugging Face directory (config.json, model.safetensors, "
                 "tokenizer.json) and stop");
  if (auto code = lab::parse_command_line(app, argc, argv)) return *code;
  return lab::run_main(app.get_name(), [&] { return run(o); });
}
