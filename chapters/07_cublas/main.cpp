// Chapter 7: the same forward on cuBLAS, in fp32, TF32 and bf16 tensor cores (fp32 accumulation),
// and the seed's example X(B×4096) @ W(4096×11008) measured for B = 1 … 1024: the ridge point of
// chapter 1, found on the hardware.
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

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

// One timed GEMM of the sweep, as --bench writes it to JSON.
struct SweepPoint {
  int batch = 0;
  std::string dtype;  // "fp32", "tf32" or "bf16"
  double seconds = 0, flops = 0, bytes = 0;

  double flop_rate() const { return flops / seconds; }
  double byte_rate() const { return bytes / seconds; }
  double intensity() const { return flops / bytes; }
};

// The GEMM of the sweep: X(B×D) @ W(D×F), the seed's D = 4096, F = 11008.
struct SweepShape {
  int D = 4096, F = 11008;
};

// How a mode stores its arrays: TF32 is a compute mode over fp32 storage.
lab::DType storage_dtype(const std::string& mode) {
  return mode == "bf16" ? lab::DType::BF16 : lab::DType::FP32;
}

void print_sweep_header() {
  std::printf("%6s %6s %10s %10s %10s %10s %12s\n", "B", "dtype", "us", "TFLOP/s", "GB/s",
              "I (F/B)", "roofline");
}

void print_sweep_row(const SweepPoint& p, const lab::Hardware& hw) {
  std::printf("%6d %6s %10.1f %10.1f %10.0f %10.1f %12s\n", p.batch, p.dtype.c_str(),
              p.seconds * 1e6, p.flop_rate() / 1e12, p.byte_rate() / 1e9, p.intensity(),
              lab::to_string(lab::classify(p.intensity(), hw)).c_str());
}

// X(B×D) @ W(D×F) for each B: W is stored [F, D] (HF layout), so this is linear(x, W).
std::vector<SweepPoint> batch_sweep(const SweepShape& shape) {
  const int D = shape.D, F = shape.F;
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
  std::vector<SweepPoint> sweep;
  print_sweep_header();
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
      sweep.push_back({B, lab::cuda::to_string(backend), t.median, cost.flops, cost.bytes()});
      print_sweep_row(sweep.back(), hw);
    }
  return sweep;
}

nlohmann::json sweep_to_json(const std::vector<SweepPoint>& sweep) {
  nlohmann::json points = nlohmann::json::array();
  for (const SweepPoint& p : sweep)
    points.push_back({{"batch", p.batch},
                      {"dtype", p.dtype},
                      {"seconds", p.seconds},
                      {"flops", p.flops},
                      {"bytes", p.bytes},
                      {"intensity", p.intensity()}});
  return points;
}

// Reads back what --bench wrote (`path` names the file in every error).
std::vector<SweepPoint> sweep_from_json(const nlohmann::json& in, const std::string& path) {
  lab::require(
      in.is_object() && in.contains("sweep") && in["sweep"].is_array() && !in["sweep"].empty(),
      path + ": no \"sweep\" array (write one with ch07_cublas --bench --json PATH)");
  std::vector<SweepPoint> sweep;
  for (const nlohmann::json& e : in["sweep"]) {
    const std::string where = path + ": sweep entry " + std::to_string(sweep.size());
    lab::require(e.is_object() && e.contains("batch") && e["batch"].is_number_integer() &&
                     e.contains("dtype") && e["dtype"].is_string() && e.contains("seconds") &&
                     e["seconds"].is_number() && e.contains("flops") && e["flops"].is_number() &&
                     e.contains("bytes") && e["bytes"].is_number(),
                 where + " needs batch (integer), dtype (string), seconds, flops and bytes");
    SweepPoint p{e["batch"].get<int>(), e["dtype"].get<std::string>(), e["seconds"].get<double>(),
                 e["flops"].get<double>(), e["bytes"].get<double>()};
    lab::require(p.batch > 0 && p.seconds > 0 && p.flops > 0 && p.bytes > 0,
                 where + ": batch, seconds, flops and bytes must be positive");
    lab::require(p.dtype == "fp32" || p.dtype == "tf32" || p.dtype == "bf16",
                 where + ": dtype '" + p.dtype + "' (allowed: fp32, tf32, bf16)");
    sweep.push_back(p);
  }
  return sweep;
}

//! [measured_ridge]
// The measured roofline of one mode: its two roofs read off the sweep, and where they meet.
struct MeasuredRidge {
  std::string dtype;
  double plateau = 0;  // compute roof: the highest FLOP/s any B reached
  int plateau_batch = 0;
  double bandwidth = 0;  // memory roof: the highest bytes/s any B moved
  int bandwidth_batch = 0;
  double intensity = 0;               // the ridge: plateau / bandwidth, in FLOP/byte
  std::optional<std::int64_t> batch;  // the smallest B whose I(B) reaches it
};

MeasuredRidge measured_ridge(const std::vector<SweepPoint>& sweep, const std::string& dtype,
                             const SweepShape& shape) {
  MeasuredRidge r;
  r.dtype = dtype;
  for (const SweepPoint& p : sweep) {
    if (p.dtype != dtype) continue;
    if (p.flop_rate() > r.plateau) {
      r.plateau = p.flop_rate();
      r.plateau_batch = p.batch;
    }
    if (p.byte_rate() > r.bandwidth) {
      r.bandwidth = p.byte_rate();
      r.bandwidth_batch = p.batch;
    }
  }
  lab::require(r.plateau > 0, "the sweep has no '" + dtype + "' points");
  // The roofline min(P, I·β) drawn with the card's measured P and β instead of the datasheet's:
  // its corner is the measured ridge, found on I(B) exactly as chapter 1 found the predicted one.
  const lab::Hardware measured{"measured", r.plateau, r.bandwidth};
  r.intensity = measured.ridge();
  r.batch = lab::crossover_batch(shape.D, shape.F, storage_dtype(dtype), measured);
  return r;
}
//! [measured_ridge]

std::string batch_text(const std::optional<std::int64_t>& batch) {
  return batch ? std::to_string(*batch) : std::string("never");
}

// Prints every mode's measured ridge next to chapter 1's prediction and returns them as JSON.
nlohmann::json report_ridge(const std::vector<SweepPoint>& sweep, const SweepShape& shape) {
  nlohmann::json out;
  out["definition"] =
      "measured roofs: plateau = highest FLOP/s of the sweep, bandwidth = highest bytes/s; "
      "ridge intensity = plateau / bandwidth; ridge batch = smallest B with I(B) >= it";
  std::printf(
      "\nmeasured ridge point: where the measured roofs meet (plateau = highest TFLOP/s, "
      "bandwidth = highest GB/s of the sweep)\n");
  std::printf("%6s %16s %6s %15s %6s %10s %9s\n", "dtype", "plateau TFLOP/s", "at B",
              "bandwidth GB/s", "at B", "ridge F/B", "ridge B");
  out["measured"] = nlohmann::json::array();
  for (const std::string dtype : {"fp32", "tf32", "bf16"}) {
    const MeasuredRidge r = measured_ridge(sweep, dtype, shape);
    std::printf("%6s %16.1f %6d %15.0f %6d %10.1f %9s\n", dtype.c_str(), r.plateau / 1e12,
                r.plateau_batch, r.bandwidth / 1e9, r.bandwidth_batch, r.intensity,
                batch_text(r.batch).c_str());
    out["measured"].push_back({{"dtype", dtype},
                               {"plateau_flops", r.plateau},
                               {"plateau_batch", r.plateau_batch},
                               {"bandwidth", r.bandwidth},
                               {"bandwidth_batch", r.bandwidth_batch},
                               {"intensity", r.intensity},
                               {"batch", r.batch ? nlohmann::json(*r.batch) : nlohmann::json()}});
  }
  // Chapter 1's prediction: the datasheet roofs of the H100 SXM, bf16.
  const lab::Hardware hw = lab::hardware_preset("h100");
  const auto predicted = lab::crossover_batch(shape.D, shape.F, lab::DType::BF16, hw);
  std::printf(
      "chapter 1 predicted (%s datasheet, bf16: %.0f TFLOP/s, %.0f GB/s): ridge %.1f F/B, "
      "B = %s\n",
      hw.name.c_str(), hw.peak_flops / 1e12, hw.bandwidth / 1e9, hw.ridge(),
      batch_text(predicted).c_str());
  out["predicted"] = {{"hardware", hw.name},
                      {"dtype", "bf16"},
                      {"peak_flops", hw.peak_flops},
                      {"bandwidth", hw.bandwidth},
                      {"intensity", hw.ridge()},
                      {"batch", predicted ? nlohmann::json(*predicted) : nlohmann::json()}};
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  lab::CommonOptions common;
  int tokens = 64;
  bool bench = false;
  std::string analyze_path;
  CLI::App app{"Chapter 7: cuBLAS and tensor cores; the batch sweep"};
  lab::add_common_options(app, common);
  app.add_option("--tokens", tokens, "sequence length")->check(CLI::Range(1, 8192));
  auto* bench_flag =
      app.add_flag("--bench", bench, "run the X(Bx4096) @ W(4096x11008) sweep and find its ridge");
  app.add_option("--analyze", analyze_path,
                 "find the ridge point of a sweep written earlier by --bench --json (no GPU)")
      ->check(CLI::ExistingFile)
      ->excludes(bench_flag);
  if (auto code = lab::parse_command_line(app, argc, argv)) return *code;
  return lab::run_main("ch07_cublas", [&] {
    nlohmann::json out;
    if (!analyze_path.empty()) {
      // A recorded sweep, re-read: its table and its ridge, with no GPU involved.
      std::ifstream in(analyze_path);
      out = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
      lab::require(!out.is_discarded(), analyze_path + ": not valid JSON");
      const std::vector<SweepPoint> sweep = sweep_from_json(out, analyze_path);
      SweepShape shape;
      if (out.contains("shape") && out["shape"].is_object()) {
        shape.D = out["shape"].value("D", shape.D);
        shape.F = out["shape"].value("F", shape.F);
      }
      lab::require(shape.D > 0 && shape.F > 0, analyze_path + ": shape D and F must be positive");
      std::printf("sweep of X(Bx%d) @ W(%dx%d) from %s\n", shape.D, shape.D, shape.F,
                  out.value("device", std::string("an unnamed device")).c_str());
      print_sweep_header();
      for (const SweepPoint& p : sweep) print_sweep_row(p, lab::hardware_preset("h100"));
      out["ridge"] = report_ridge(sweep, shape);
    } else if (bench) {
      const lab::cuda::DeviceInfo device = lab::cuda::require_device();
      const SweepShape shape;
      const std::vector<SweepPoint> sweep = batch_sweep(shape);
      out["device"] = device.name;
      out["shape"] = {{"D", shape.D}, {"F", shape.F}};
      out["sweep"] = sweep_to_json(sweep);
      out["ridge"] = report_ridge(sweep, shape);
    } else {
      lab::cuda::require_device();
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
