// Chapter 6: the first CUDA forward pass. Every kernel is the most direct translation of the math
// (one thread per output, attention with the scores in main memory); the result must equal
// chapter 2's logits, and the timing shows how far such code is from the hardware's roofline.
#include <cstdio>
#include <string>

#include "common/cli.hpp"
#include "common/compare.hpp"
#include "common/cost_model.hpp"
#include "common/error.hpp"
#include "common/model_source.hpp"
#include "common/random.hpp"
#include "cpu_reference/transformer.hpp"
#include "cuda/device.hpp"
#include "cuda/forward.hpp"

int main(int argc, char** argv) {
  lab::CommonOptions common;
  int tokens = 64;
  CLI::App app{"Chapter 6: a naive CUDA forward pass, checked against chapter 2"};
  lab::add_common_options(app, common);
  app.add_option("--tokens", tokens, "sequence length")->check(CLI::Range(1, 8192));
  if (auto code = lab::parse_command_line(app, argc, argv)) return *code;
  return lab::run_main("ch06_cuda_naive", [&] {
    const auto info = lab::cuda::require_device();
    const lab::LoadedModel model = lab::load_model(common.model, common.seed);
    const lab::ModelConfig& c = model.weights.config;
    const int n = std::min(tokens, c.max_seq_len);
    lab::Rng rng(common.seed);
    std::vector<int> ids(static_cast<std::size_t>(n));
    for (int& t : ids) t = static_cast<int>(rng.below(static_cast<std::uint64_t>(c.vocab_size)));
    std::printf("model: %s, %d tokens, fp32\n", lab::describe(c).c_str(), n);

    // 1. Correctness first: the same logits as chapter 2 (CPU, fp32).
    lab::cuda::TeacherForcedForward gpu(model.weights, lab::cuda::MatmulBackend::Naive, n);
    const auto got = gpu.forward(ids);
    const auto ref = lab::cpu::teacher_forced_logits(model.weights, ids);
    const lab::Tolerance tol = lab::tolerance_for(
        lab::DType::FP32, std::max({c.hidden_size, c.intermediate_size, n}), c.num_layers + 1);
    const auto r = lab::compare(ref, got, tol, static_cast<std::size_t>(c.vocab_size));
    std::printf("== 1. GPU vs chapter 2 ==\n%s\n(%s)\n", lab::summary(r).c_str(),
                tol.reason.c_str());
    nlohmann::json out{
        {"model", c.name}, {"tokens", n}, {"rel_l2", r.rel_l2}, {"passed", r.passed}};

    // 2. Speed against the roofline (skipped under --doc: timings are not deterministic).
    lab::Workload work{1, n, 0, lab::DType::FP32, /*all_logits=*/true, false};
    const auto costs = lab::model_costs(c, work);
    const lab::OpCost all = lab::total(costs);
    if (!common.doc) {
      const auto t = gpu.time_forward(ids, 2, 10);
      // The roofline with fp32 FMA units (no tensor cores): H100 SXM ~67 TFLOP/s, 3.35 TB/s.
      const lab::Hardware hw{"H100 SXM fp32", 67e12, 3.35e12};
      const double rate = all.flops / t.median;
      std::printf("\n== 2. Speed on %s ==\n", info.name.c_str());
      std::printf(
          "forward: %.3f ms, %.2f GFLOP -> %.1f GFLOP/s; roofline for I = %.1f: %.0f "
          "GFLOP/s (%.2f%%)\n",
          t.median * 1e3, all.flops / 1e9, rate / 1e9, all.intensity(),
          lab::attainable_flops(all.intensity(), hw) / 1e9,
          100 * rate / lab::attainable_flops(all.intensity(), hw));
      out["seconds"] = t.median;
      out["flops"] = all.flops;
      out["flops_per_second"] = rate;
      const auto per_op = gpu.profile(ids);
      std::printf("%-28s %10s %12s %10s\n", "op (summed over layers)", "us", "GFLOP/s", "GB/s");
      for (const auto& [name, seconds] : per_op) {
        double flops = 0, bytes = 0;
        for (const auto& op : costs)
          if (name.rfind(op.name, 0) == 0 ||
              (name == "layers.attention" && op.name.find("layers.attention") == 0) ||
              (name == "layers.attention" && op.name == "layers.softmax"))
            flops += op.flops, bytes += op.bytes();
        std::printf("%-28s %10.1f %12.1f %10.1f\n", name.c_str(), seconds * 1e6,
                    flops / seconds / 1e9, bytes / seconds / 1e9);
        out["ops"].push_back(
            {{"op", name}, {"seconds", seconds}, {"flops", flops}, {"bytes", bytes}});
      }
    }
    if (!common.json_path.empty()) lab::write_json(common.json_path, out);
    return r.passed ? 0 : 1;
  });
}
