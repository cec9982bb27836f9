// Chapter 12: tensor parallelism (张量并行) — the chapter 8 decoder split over N GPUs the
// Megatron-LM / vLLM way, and what it buys: each GPU streams 1/N of the weights per token, and
// pays two all-reduces per layer for it.
// lab-link: lab_cuda_tp
#include <cstdio>
#include <string>
#include <vector>

#include "bench.hpp"
#include "common/cli.hpp"
#include "common/compare.hpp"
#include "common/cost_model.hpp"
#include "common/error.hpp"
#include "common/model_source.hpp"
#include "common/tensor_parallel.hpp"
#include "cuda/decoder.hpp"
#include "cuda/device.hpp"
#include "cuda/tensor_parallel.hpp"

namespace {

using lab::cuda::DecoderOptions;
using lab::cuda::DecoderPrecision;

struct Options {
  lab::CommonOptions common;
  bool bench = false;
  bool predict = false;
  int gpus = 0;     // 0: every visible GPU
  int emulate = 0;  // 0: emulate N = 2 and 4 in the narrated run
  bool no_graph = false;
  std::string prompt = "Tensor parallelism";
  int max_new_tokens = 24;
  ScalingOptions scaling;
};

// fp32: only the order of the o_proj and down_proj sums changes (plus the partial sums being added
// to x after, not inside, the GEMV), a reduction of length max(D, F) per layer. bf16: the same
// reordering can flip the bf16 rounding of an activation or a cached key, so the bound is that of
// bf16 storage (Appendix C).
lab::Tolerance tolerance_for_precision(const lab::ModelConfig& c, DecoderPrecision p) {
  if (p == DecoderPrecision::FP32)
    return lab::tolerance_for(lab::DType::FP32, std::max(c.hidden_size, c.intermediate_size),
                              c.num_layers + 1);
  return lab::storage_tolerance(lab::DType::BF16, c.num_layers + 1);
}

//! [check_against_ch08]
// The tensor-parallel decoder against chapter 8's on the same weights: the logits of the prompt
// and of every teacher-forced decode step, every rank's copy of them, and greedy generation.
nlohmann::json check(const lab::ModelWeights& w, const std::vector<int>& prompt, int max_new,
                     int world_size, bool emulate, bool use_graph) {
  nlohmann::json j{{"world_size", world_size}, {"all_reduce", emulate ? "emulated" : "nccl"}};
  for (DecoderPrecision p : {DecoderPrecision::FP32, DecoderPrecision::BF16}) {
    DecoderOptions d;
    d.precision = p;
    d.capacity = static_cast<int>(prompt.size()) + max_new;
    lab::cuda::Decoder ch08(w, d);
    lab::cuda::TensorParallelOptions o;
    o.world_size = world_size;
    o.emulate = emulate;
    o.decoder = d;
    lab::cuda::TensorParallelDecoder tp(w, o);
    const lab::Tolerance tol = tolerance_for_precision(w.config, p);
    const auto greedy = ch08.generate_greedy(prompt, max_new, true);
    ch08.reset();
    std::vector<float> ref = ch08.forward(prompt), got = tp.forward(prompt);
    double worst = 0, share = 0;
    bool ranks_agree = true;
    for (int s = 0; s < max_new; ++s) {
      const auto r = lab::compare(ref, got, tol, static_cast<std::size_t>(w.config.vocab_size));
      worst = std::max(worst, r.rel_l2), share = std::max(share, r.share_of_tolerance);
      for (int k = 1; k < world_size; ++k) ranks_agree = ranks_agree && tp.rank_logits(k) == got;
      if (s + 1 == max_new) break;
      const int token = greedy[static_cast<std::size_t>(s)];  // teacher-forced by chapter 8
      ref = ch08.forward(std::span<const int>(&token, 1));
      got = tp.forward(std::span<const int>(&token, 1));
    }
    tp.reset();
    const auto tokens = tp.generate_greedy(prompt, max_new, use_graph);
    int same = 0;
    while (same < max_new && tokens[same] == greedy[same]) ++same;
    std::printf(
        "  %s: worst rel L2 of the step logits %.1e (%.0f%% of the %s tolerance %.1e); "
        "ranks' logits identical: %s; greedy tokens identical for %d of %d\n",
        lab::cuda::to_string(p).c_str(), worst, 100 * share, lab::cuda::to_string(p).c_str(),
        tol.rel_l2, ranks_agree ? "yes" : "NO", same, max_new);
    j[lab::cuda::to_string(p)] = {{"worst_rel_l2", worst},
                                  {"share_of_tolerance", share},
                                  {"ranks_agree", ranks_agree},
                                  {"identical_tokens", same}};
  }
  return j;
}
//! [check_against_ch08]

int narrate(const Options& o, nlohmann::json& out) {
  const lab::LoadedModel model = lab::load_model(o.common.model, o.common.seed);
  const lab::ModelConfig& c = model.weights.config;
  std::printf("model: %s\n", lab::describe(c).c_str());
  const std::vector<int> prompt = model.tokenizer->encode(o.prompt);
  std::printf("prompt: \"%s\" (%zu tokens), %d new tokens\n\n", o.prompt.c_str(), prompt.size(),
              o.max_new_tokens);

  std::printf("== 1. Who owns what: the block split over N ranks ==\n");
  for (int n : {2, 4, 8}) {
    try {
      for (int r = 0; r < n; ++r)
        std::printf("  N=%d %s\n", n, lab::describe(lab::tensor_parallel_shard(c, n, r)).c_str());
    } catch (const lab::Error& e) {
      std::printf("  N=%d: %s\n", n, e.what());
    }
  }

  std::printf("\n== 2. One rank through NCCL, against chapter 8 ==\n");
  out["checks"].push_back(check(model.weights, prompt, o.max_new_tokens, 1, false, !o.no_graph));

  std::printf("\n== 3. N ranks emulated on one GPU (partial sums added on the device) ==\n");
  const std::vector<int> emulated =
      o.emulate > 0 ? std::vector<int>{o.emulate} : std::vector<int>{2, 4};
  for (int n : emulated) {
    std::printf(" N=%d:\n", n);
    try {
      out["checks"].push_back(check(model.weights, prompt, o.max_new_tokens, n, true, !o.no_graph));
    } catch (const lab::NoDeviceError&) {
      throw;
    } catch (const lab::Error& e) {
      std::printf("  skipped: %s\n", e.what());
    }
  }

  // Real GPUs: their number depends on the machine, so the textbook's --doc run leaves it out
  // unless --gpus asks for it.
  const int visible = lab::cuda::visible_gpu_count();
  const int gpus = o.gpus > 0 ? o.gpus : (o.common.doc ? 1 : visible);
  if (gpus > 1) {
    std::printf("\n== 4. N = %d GPUs through NCCL, against chapter 8 ==\n", gpus);
    out["checks"].push_back(
        check(model.weights, prompt, o.max_new_tokens, gpus, false, !o.no_graph));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Chapter 12: tensor parallelism — the decoder split over N GPUs with NCCL"};
  lab::add_common_options(app, o.common);
  app.add_flag("--bench", o.bench,
               "measure decode tokens/s and the all-reduce time per step (llama2-7b, llama2-70b)");
  app.add_flag("--predict", o.predict,
               "print the cost model's prediction of the decode step at N = 1, 2, 4, 8 (no GPU)");
  app.add_option("--gpus", o.gpus, "GPUs to split the model over (default: every visible GPU)")
      ->check(CLI::Range(1, 64));
  app.add_option("--emulate", o.emulate,
                 "run N ranks on one GPU (all-reduce emulated by device adds) instead of N GPUs")
      ->check(CLI::Range(1, 64));
  app.add_flag("--no-graph", o.no_graph, "decode without CUDA graphs");
  app.add_option("--prompt", o.prompt, "prompt text");
  app.add_option("--max-new-tokens", o.max_new_tokens, "tokens to generate")
      ->check(CLI::Range(1, 1024));
  app.add_option("--context", o.scaling.context, "context of the benchmarked decode step")
      ->check(CLI::Range(2, 32768));
  app.add_option("--steps", o.scaling.steps, "timed decode steps")->check(CLI::Range(1, 4096));
  app.add_option("--hardware", o.scaling.hardware, "hardware preset of the prediction")
      ->check(CLI::IsMember(lab::hardware_names()));
  app.add_option("--link", o.scaling.link, "interconnect preset of the prediction")
      ->check(CLI::IsMember(lab::interconnect_names()));
  if (auto code = lab::parse_command_line(app, argc, argv)) return *code;
  return lab::run_main("ch12_tensor_parallel", [&] {
    nlohmann::json out;
    if (o.predict) {  // arithmetic only: runs without a GPU (the textbook's table and plot)
      print_prediction(o.scaling, out);
    } else {
      const auto info = lab::cuda::require_device();
      if (!o.common.doc) std::printf("device: %s\n", lab::cuda::describe(info).c_str());
      if (o.bench) {
        const int gpus = o.gpus > 0 ? o.gpus : lab::cuda::visible_gpu_count();
        print_prediction(o.scaling, out);
        run_bench(o.scaling, o.emulate > 0 ? o.emulate : gpus, o.emulate > 0, out);
      } else {
        narrate(o, out);
      }
    }
    if (!o.common.json_path.empty()) lab::write_json(o.common.json_path, out);
    return 0;
  });
}
