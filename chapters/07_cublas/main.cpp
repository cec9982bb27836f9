// Chapter 7: the same forward on cuBLAS, in fp32, TF32 and bf16 tensor cores (fp32 accumulation),
// and the seed's example X(B×4096) @ W(4096×11008) measured for B = 1 … 1024: the ridge point of
// chapter 1, found on the hardware.
#include <cstdio>
#include <string>

#include "common/cli.hpp"
#include "common/compare.hpp"
#include "common/cost_model.hpp"
#include "common/error.hpp"
#include "common/model_source.hpp"
#include "common/random.hpp"
#include "cuda/buffer.hpp"
#include "cuda/device.hpp"
#include "cuda/forward.hpp"
#include "cuda/gemm.hpp"
#include "cuda/resources.hpp"

namespace {

// X(B×D) @ W(D×F) for each B: W is stored [F, D] (HF layout), so this is linear(x, W).
void batch_sweep(nlohmann::json& out) {
  const int D = 4096, F = 11008;
  lab::cuda::Stream stream;
  lab::cuda::CublasHandle handle(stream.get());
  const int copies = 4;  // 4 × 180 MB (fp32 W): rotating keeps W out of the 50 MB L2
  lab::cuda::DeviceBuffer<float> w(static_cast<std::size_t>(D) * F * copies);
  lab::cuda::DeviceBuffer<lab::cuda::bf16> w16(w.size());
  lab::cuda::fill_random<float>(w.get(), static_cast<std::int64_t>(w.size()), 1, 0.02f, 0,
                                stream.get());
  lab::cuda::to_bf16(w.get(), w16.get(), static_cast<std::int64_t>(w.size()), stream.get());
  const int max_b = 1024;
  lab::cuda::DeviceBuffer<float> x(static_cast<std::size_t>(max_b) * D),
      y(static_cast<std::size_t>(max_b) * F);
  lab::cuda::DeviceBuffer<lab::cuda::bf16> x16(x.size());
  lab::cuda::fill_random<float>(x.get(), static_cast<std::int64_t>(x.size()), 2, 1.0f, 0,
                                stream.get());
  lab::cuda::to_bf16(x.get(), x16.get(), static_cast<std::int64_t>(x.size()), stream.get());
  const lab::Hardware hw = lab::hardware_preset("h100");
  std::printf("%6s %6s %10s %10s %10s %10s %12s\n", "B", "dtype", "us", "TFLOP/s", "GB/s",
              "I (F/B)", "roofline");
  for (int B : {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024})
    for (auto backend : {lab::cuda::MatmulBackend::CublasFP32, lab::cuda::MatmulBackend::CublasTF32,
                         lab::cuda::MatmulBackend::CublasBF16}) {
      const bool is16 = backend == lab::cuda::MatmulBackend::CublasBF16;
      const lab::OpCost cost =
          lab::matmul_cost(B, D, F, is16 ? lab::DType::BF16 : lab::DType::FP32);
      int i = 0;
      const auto t = lab::cuda::time_on_device(
          stream.get(),
          [&] {
            const std::size_t off =
                static_cast<std::size_t>(D) * F * static_cast<std::size_t>(i++ % copies);
            if (is16)
              lab::cuda::linear_bf16(handle.get(), w16.get() + off, x16.get(), y.get(), B, D, F,
                                     false);
            else
              lab::cuda::linear_fp32(handle.get(), w.get() + off, x.get(), y.get(), B, D, F, false,
                                     backend == lab::cuda::MatmulBackend::CublasTF32);
          },
          3, 20);
      const double tflops = cost.flops / t.median / 1e12;
      std::printf("%6d %6s %10.1f %10.1f %10.0f %10.1f %12s\n", B,
                  lab::cuda::to_string(backend).c_str(), t.median * 1e6, tflops,
                  cost.bytes() / t.median / 1e9, cost.intensity(),
                  lab::to_string(lab::classify(cost.intensity(), hw)).c_str());
      out["sweep"].push_back({{"batch", B},
                              {"dtype", lab::cuda::to_string(backend)},
                              {"seconds", t.median},
                              {"flops", cost.flops},
                              {"bytes", cost.bytes()},
                              {"intensity", cost.intensity()}});
    }
}

}  // namespace

int main(int argc, char** argv) {
  lab::CommonOptions common;
  int tokens = 64;
  bool bench = false;
  CLI::App app{"Chapter 7: cuBLAS and tensor cores; the batch sweep"};
  lab::add_common_options(app, common);
  app.add_option("--tokens", tokens, "sequence length")->check(CLI::Range(1, 8192));
  app.add_flag("--bench", bench, "run the X(Bx4096) @ W(4096x11008) sweep");
  if (auto code = lab::parse_command_line(app, argc, argv)) return *code;
  return lab::run_main("ch07_cublas", [&] {
    lab::cuda::require_device();
    nlohmann::json out;
    if (bench) {
      batch_sweep(out);
    } else {
      const lab::LoadedModel model = lab::load_model(common.model, common.seed);
      const lab::ModelConfig& c = model.weights.config;
      const int n = std::min(tokens, c.max_seq_len);
      lab::Rng rng(common.seed);
      std::vector<int> ids(static_cast<std::size_t>(n));
      for (int& t : ids) t = static_cast<int>(rng.below(static_cast<std::uint64_t>(c.vocab_size)));
      std::printf("model: %s, %d tokens\n", lab::describe(c).c_str(), n);
      const auto naive =
          lab::cuda::TeacherForcedForward(model.weights, lab::cuda::MatmulBackend::Naive, n)
              .forward(ids);
      const int reduction = std::max(c.hidden_size, c.intermediate_size);
      for (auto [backend, dtype] :
           {std::pair{lab::cuda::MatmulBackend::CublasFP32, lab::DType::FP32},
            std::pair{lab::cuda::MatmulBackend::CublasTF32, lab::DType::FP16},
            std::pair{lab::cuda::MatmulBackend::CublasBF16, lab::DType::BF16}}) {
        lab::cuda::TeacherForcedForward gpu(model.weights, backend, n);
        const auto r = lab::compare(naive, gpu.forward(ids),
                                    lab::tolerance_for(dtype, reduction, c.num_layers + 1),
                                    static_cast<std::size_t>(c.vocab_size));
        std::printf("%-5s vs chapter 6: %s\n", lab::cuda::to_string(backend).c_str(),
                    lab::summary(r).c_str());
        out[lab::cuda::to_string(backend)] = {{"rel_l2", r.rel_l2}, {"argmax", r.argmax_agreement}};
      }
    }
    if (!common.json_path.empty()) lab::write_json(common.json_path, out);
    return 0;
  });
}
