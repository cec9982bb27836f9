#include "common/timing.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "common/error.hpp"

namespace lab {

namespace {
long long now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double nearest_rank(const std::vector<double>& sorted, double p) {
  const auto n = static_cast<double>(sorted.size());
  auto rank = static_cast<std::size_t>(std::ceil(p * n));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}
}  // namespace

TimingStats summarize(std::vector<double> samples) {
  require(!samples.empty(), "summarize: no samples");
  TimingStats s;
  s.seconds = samples;
  std::sort(samples.begin(), samples.end());
  const std::size_t n = samples.size();
  s.median = n % 2 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
  s.min = samples.front();
  s.max = samples.back();
  s.p10 = nearest_rank(samples, 0.10);
  s.p90 = nearest_rank(samples, 0.90);
  s.mean = std::accumulate(samples.begin(), samples.end(), 0.0) / static_cast<double>(n);
  return s;
}

//! [time_function]
TimingStats time_function(const std::function<void()>& body, int warmup, int repeats) {
  require(warmup >= 0, "warm-up count must not be negative");
  require(repeats >= 1, "repeats must be at least 1");
  for (int i = 0; i < warmup; ++i) body();
  std::vector<double> samples;
  samples.reserve(static_cast<std::size_t>(repeats));
  for (int i = 0; i < repeats; ++i) {
    const long long t0 = now_ns();
    body();
    samples.push_back(static_cast<double>(now_ns() - t0) * 1e-9);
  }
  return summarize(std::move(samples));
}
//! [time_function]

Stopwatch::Stopwatch() : start_ns_(now_ns()) {}
double Stopwatch::seconds() const {
  return static_cast<double>(now_ns() - start_ns_) * 1e-9;
}
void Stopwatch::reset() {
  start_ns_ = now_ns();
}

}  // namespace lab
