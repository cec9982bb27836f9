#include "cpu_reference/benchmark.hpp"

#include <algorithm>
#include <numeric>

#include "common/cost_model.hpp"
#include "common/timing.hpp"

namespace lab::cpu {

//! [read_bandwidth]
double measure_read_bandwidth(int megabytes, int repeats) {
  const std::size_t n = static_cast<std::size_t>(megabytes) * (1 << 20) / sizeof(float);
  std::vector<float> data(n, 1.0f);  // touched once here, so the pages exist before timing
  const int threads = num_threads();
  double best = 1e30, sink = 0;
  for (int r = 0; r < repeats; ++r) {
    Stopwatch clock;
    double total = 0;
#pragma omp parallel for num_threads(threads) reduction(+ : total) schedule(static)
    for (int t = 0; t < threads; ++t) {
      const std::size_t begin = n * static_cast<std::size_t>(t) / static_cast<std::size_t>(threads);
      const std::size_t end =
          n * static_cast<std::size_t>(t + 1) / static_cast<std::size_t>(threads);
      // Eight independent partial sums let the core keep several loads in flight.
      const Eigen::Map<const Eigen::ArrayXf> part(data.data() + begin,
                                                  static_cast<Eigen::Index>(end - begin));
      total += static_cast<double>(part.sum());
    }
    best = std::min(best, clock.seconds());
    sink += total;
  }
  if (sink < 0) return 0;  // keeps the sums alive
  return static_cast<double>(n * sizeof(float)) / best;
}
//! [read_bandwidth]

double measure_gemm_peak(int n, int repeats) {
  const Matrix<float> a = Matrix<float>::Random(n, n), b = Matrix<float>::Random(n, n);
  Matrix<float> c(n, n);
  const TimingStats t = time_function([&] { c.noalias() = a * b; }, 1, repeats);
  return 2.0 * n * n * static_cast<double>(n) / t.min;
}

DecoderBenchmark benchmark_decoder(const Transformer<float>& model, int prompt_tokens,
                                   int decode_tokens, int repeats) {
  const ModelConfig& c = model.config();
  DecoderBenchmark b;
  b.prompt_tokens = prompt_tokens;
  b.decode_tokens = decode_tokens;
  std::vector<int> prompt(static_cast<std::size_t>(prompt_tokens));
  for (std::size_t i = 0; i < prompt.size(); ++i)
    prompt[i] = static_cast<int>(i * 7919 % static_cast<std::size_t>(c.vocab_size));
  KVCache<float> cache(c, prompt_tokens + decode_tokens);
  std::vector<double> prefill, decode;
  for (int r = 0; r < repeats + 1; ++r) {  // the first round is the warm-up
    cache.clear();
    Stopwatch clock;
    Matrix<float> logits = model.forward(prompt, cache);
    const double t_prefill = clock.seconds();
    for (int s = 0; s < decode_tokens; ++s) {
      const int token[] = {(s * 31) % c.vocab_size};
      clock.reset();
      logits = model.forward(token, cache);
      if (r > 0) decode.push_back(clock.seconds());
    }
    if (r > 0) prefill.push_back(t_prefill);
  }
  b.prefill_seconds = summarize(prefill).median;
  b.decode_seconds = summarize(decode).median;
  b.prefill_flops = total(model_costs(c, prefill_workload(prompt_tokens, 1, DType::FP32))).flops;
  // Every weight once, plus the cached K/V at the middle of the timed steps.
  b.decode_bytes =
      weight_bytes(c, DType::FP32) + static_cast<double>(kv_cache_bytes_per_token(c, DType::FP32)) *
                                         (prompt_tokens + decode_tokens / 2.0);
  return b;
}

}  // namespace lab::cpu
