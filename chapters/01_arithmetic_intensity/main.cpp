// Chapter 1: arithmetic intensity (算术强度), the roofline, and the size of the KV cache.
// Seed §10.2.2 and §10.2.1. Everything here is arithmetic on shapes: no model runs, so the
// chapter works on any laptop and its numbers are the predictions later chapters measure.
#include <cstdio>
#include <string>
#include <vector>

#include "common/cli.hpp"
#include "common/cost_model.hpp"
#include "common/error.hpp"
#include "common/format.hpp"
#include "common/model_config.hpp"

namespace {

struct Options {
  lab::CommonOptions common;
  std::vector<std::int64_t> batches{1, 16, 64, 256, 512};
  std::int64_t hidden = 4096;  // D: Llama-2-7B/13B
  std::int64_t ffn = 11008;    // F: Llama-2-7B's MLP width
  std::string dtype = "fp16";
  std::string hardware = "h100";
  double peak_tflops = 0;
  double bandwidth_tbs = 0;
  std::int64_t context = 4096;
  std::int64_t prompt_tokens = 512;
  double memory_gb = 80;
};

lab::Hardware pick_hardware(const Options& o) {
  if (o.hardware != "custom") {
    lab::Hardware hw = lab::hardware_preset(o.hardware);
    if (o.peak_tflops > 0) hw.peak_flops = o.peak_tflops * 1e12;
    if (o.bandwidth_tbs > 0) hw.bandwidth = o.bandwidth_tbs * 1e12;
    return hw;
  }
  lab::require(o.peak_tflops > 0 && o.bandwidth_tbs > 0,
               "--hardware custom needs --peak-tflops and --bandwidth-tbs");
  return {"custom", o.peak_tflops * 1e12, o.bandwidth_tbs * 1e12};
}

nlohmann::json to_json(const lab::OpCost& op) {
  return {{"name", op.name},
          {"flops", op.flops},
          {"bytes_read", op.bytes_read},
          {"bytes_written", op.bytes_written},
          {"intensity", op.intensity()}};
}

int run(const Options& o) {
  const lab::DType dtype = lab::parse_dtype(o.dtype);
  const lab::Hardware hw = pick_hardware(o);
  lab::ModelConfig model;
  try {
    model = lab::preset(o.common.model);  // shapes only: this chapter runs no weights
  } catch (const lab::Error& e) {
    throw lab::Error(std::string("--model: ") + e.what());
  }
  nlohmann::json out;
  out["hardware"] = {{"name", hw.name},
                     {"peak_flops", hw.peak_flops},
                     {"bandwidth", hw.bandwidth},
                     {"ridge", hw.ridge()}};
  out["dtype"] = lab::to_string(dtype);

  // 1. The seed's worked example: one decode step of one MLP matrix at B = 1.
  std::printf("== 1. Arithmetic intensity of X(B x D) @ W(D x F), %s (seed 10.2.2) ==\n",
              lab::to_string(dtype).c_str());
  const lab::OpCost one = lab::matmul_cost(1, o.hidden, o.ffn, dtype);
  std::printf("B = 1, D = %lld, F = %lld\n", static_cast<long long>(o.hidden),
              static_cast<long long>(o.ffn));
  std::printf("FLOPs             = %s  (2 B D F)\n",
              lab::with_commas(static_cast<std::int64_t>(one.flops)).c_str());
  std::printf("bytes transferred = %s  (read X, read W, write Y) = %.3f MB\n",
              lab::with_commas(static_cast<std::int64_t>(one.bytes())).c_str(), one.bytes() / 1e6);
  std::printf("intensity I       = %.4f FLOP/byte\n", one.intensity());
  std::printf("%s ridge point    = %.0f TFLOP/s / %.2f TB/s = %.1f FLOP/byte\n", hw.name.c_str(),
              hw.peak_flops / 1e12, hw.bandwidth / 1e12, hw.ridge());
  std::printf("verdict: %s (I %s ridge)\n\n",
              lab::to_string(lab::classify(one.intensity(), hw)).c_str(),
              one.intensity() < hw.ridge() ? "<" : ">=");
  out["seed_example"] = to_json(one);

  // 2. Car-pooling (拼车效应): the weights are read once whatever B is, so I grows with B.
  std::printf("== 2. Batch sweep: the same weights serve B rows (car-pooling) ==\n");
  std::printf("%6s %16s %16s %12s %18s  %s\n", "B", "FLOPs", "bytes", "I (F/B)", "roofline TFLOP/s",
              "bound");
  nlohmann::json sweep = nlohmann::json::array();
  for (std::int64_t B : o.batches) {
    const lab::OpCost op = lab::matmul_cost(B, o.hidden, o.ffn, dtype);
    const double attainable = lab::attainable_flops(op.intensity(), hw);
    std::printf("%6lld %16s %16s %12.1f %18.1f  %s\n", static_cast<long long>(B),
                lab::with_commas(static_cast<std::int64_t>(op.flops)).c_str(),
                lab::with_commas(static_cast<std::int64_t>(op.bytes())).c_str(), op.intensity(),
                attainable / 1e12, lab::to_string(lab::classify(op.intensity(), hw)).c_str());
    nlohmann::json point = to_json(op);
    point["batch"] = B;
    point["attainable_flops"] = attainable;
    point["bound"] = lab::to_string(lab::classify(op.intensity(), hw));
    sweep.push_back(point);
  }
  out["sweep"] = sweep;
  const auto crossover = lab::crossover_batch(o.hidden, o.ffn, dtype, hw);
  if (crossover) {
    std::printf("crossover: from B = %lld on, this matmul is compute-bound on %s\n\n",
                static_cast<long long>(*crossover), hw.name.c_str());
    out["crossover_batch"] = *crossover;
  } else {
    std::printf("crossover: never; even B -> infinity stays below the ridge point\n\n");
    out["crossover_batch"] = nullptr;
  }

  // 3. The KV cache (KV 缓存): what decode must re-read for every token it writes.
  std::printf(
      "== 3. KV cache size = 2 (K, V) x layers x kv_heads x head_dim x bytes (seed 10.2.1) ==\n");
  std::printf("%-14s %6s %8s %8s %14s %18s\n", "model", "layers", "kv_heads", "head_dim",
              "per token", "at context");
  nlohmann::json kv = nlohmann::json::array();
  for (const auto& name : lab::preset_names()) {
    const lab::ModelConfig c = lab::preset(name);
    const auto per_token = lab::kv_cache_bytes_per_token(c, dtype);
    const double at_context = static_cast<double>(per_token) * static_cast<double>(o.context);
    const std::string per_token_text =
        lab::with_commas(per_token) + " B = " + lab::format_bytes(static_cast<double>(per_token));
    std::printf("%-14s %6d %8d %8d %24s %11s @ %lld\n", name.c_str(), c.num_layers, c.num_kv_heads,
                c.head_dim, per_token_text.c_str(), lab::format_bytes(at_context).c_str(),
                static_cast<long long>(o.context));
    kv.push_back(
        {{"model", name}, {"bytes_per_token", per_token}, {"bytes_at_context", at_context}});
  }
  out["kv_cache"] = kv;
  out["context"] = o.context;

  // Variants that shrink the cache keep the model width and share K/V among query heads.
  std::printf("\nAttention variants at %s's width (%d query heads), %.0f GB of memory:\n",
              model.name.c_str(), model.num_heads, o.memory_gb);
  std::printf("%-5s %8s %14s %16s %20s\n", "kind", "kv_heads", "per token", "weights",
              "tokens that fit");
  nlohmann::json variants = nlohmann::json::array();
  struct Variant {
    const char* kind;
    int kv_heads;
  };
  const Variant list[] = {{"MHA", model.num_heads},
                          {"GQA", model.num_heads / 4 > 0 ? model.num_heads / 4 : 1},
                          {"MQA", 1}};
  for (const auto& v : list) {
    lab::ModelConfig c = model;
    c.num_kv_heads = v.kv_heads;
    const auto per_token = lab::kv_cache_bytes_per_token(c, dtype);
    const auto fits = lab::max_cached_tokens(c, dtype, o.memory_gb * 1e9);
    std::printf("%-5s %8d %14s %16s %20s\n", v.kind, v.kv_heads,
                (lab::with_commas(per_token) + " B").c_str(),
                lab::format_bytes(lab::weight_bytes(c, dtype)).c_str(),
                lab::with_commas(fits).c_str());
    variants.push_back({{"kind", v.kind},
                        {"kv_heads", v.kv_heads},
                        {"bytes_per_token", per_token},
                        {"weight_bytes", lab::weight_bytes(c, dtype)},
                        {"tokens_that_fit", fits}});
  }
  out["attention_variants"] = variants;

  // 4. The whole model: prefill (预填充) is compute-bound, decode is memory-bound (内存墙).
  std::printf(
      "\n== 4. Whole model %s, %s: prefill of %lld tokens vs one decode step at context %lld ==\n",
      model.name.c_str(), lab::to_string(dtype).c_str(), static_cast<long long>(o.prompt_tokens),
      static_cast<long long>(o.prompt_tokens));
  std::printf("%-8s %16s %16s %10s %14s %14s\n", "phase", "FLOPs", "bytes", "I (F/B)", "bound",
              "roofline time");
  nlohmann::json phases = nlohmann::json::array();
  for (int is_decode = 0; is_decode < 2; ++is_decode) {
    const lab::Workload w = is_decode ? lab::decode_workload(o.prompt_tokens, 1, dtype)
                                      : lab::prefill_workload(o.prompt_tokens, 1, dtype);
    const auto ops = lab::model_costs(model, w);
    const lab::OpCost sum = lab::total(ops, is_decode ? "decode" : "prefill");
    const double seconds = lab::roofline_seconds(sum, hw);
    std::printf("%-8s %16s %16s %10.1f %14s %11.3f ms\n", sum.name.c_str(),
                lab::format_si(sum.flops).c_str(), lab::format_bytes(sum.bytes()).c_str(),
                sum.intensity(), lab::to_string(lab::classify(sum.intensity(), hw)).c_str(),
                seconds * 1e3);
    nlohmann::json phase = to_json(sum);
    phase["roofline_seconds"] = seconds;
    nlohmann::json per_op = nlohmann::json::array();
    for (const auto& op : ops) per_op.push_back(to_json(op));
    phase["ops"] = per_op;
    phases.push_back(phase);
  }
  out["model"] = model.name;
  out["phases"] = phases;
  const double decode_seconds = phases[1]["roofline_seconds"].get<double>();
  std::printf(
      "decode at B = 1 cannot beat %.0f tokens/s on %s: every step re-reads %s of weights.\n",
      1.0 / decode_seconds, hw.name.c_str(),
      lab::format_bytes(lab::weight_bytes(model, dtype)).c_str());

  if (!o.common.json_path.empty()) lab::write_json(o.common.json_path, out);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  o.common.model = "llama2-7b";
  CLI::App app{"Chapter 1: arithmetic intensity, the roofline and the KV cache",
               "ch01_arithmetic_intensity"};
  lab::add_common_options(app, o.common);
  app.add_option("--batch,-B", o.batches, "Batch sizes to sweep")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--hidden,-D", o.hidden, "Hidden size D")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 30))
      ->capture_default_str();
  app.add_option("--ffn,-F", o.ffn, "MLP width F")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 30))
      ->capture_default_str();
  app.add_option("--dtype", o.dtype, "Storage dtype")
      ->check(CLI::IsMember(lab::dtype_names()))
      ->capture_default_str();
  app.add_option("--hardware", o.hardware, "Hardware preset")
      ->check(CLI::IsMember(lab::hardware_names()))
      ->capture_default_str();
  app.add_option("--peak-tflops", o.peak_tflops, "Peak TFLOP/s (custom hardware, or override)")
      ->check(CLI::PositiveNumber);
  app.add_option("--bandwidth-tbs", o.bandwidth_tbs,
                 "Memory bandwidth in TB/s (custom hardware, or override)")
      ->check(CLI::PositiveNumber);
  app.add_option("--context", o.context, "Context length for the KV-cache table")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 30))
      ->capture_default_str();
  app.add_option("--prompt-tokens", o.prompt_tokens, "Prompt length for the prefill vs decode view")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 24))
      ->capture_default_str();
  app.add_option("--memory-gb", o.memory_gb, "GPU memory for the 'tokens that fit' table")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  if (auto code = lab::parse_command_line(app, argc, argv)) return *code;
  return lab::run_main(app.get_name(), [&] { return run(o); });
}
