#include "common/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "common/error.hpp"

namespace lab {

LatencyMetrics latency_metrics(std::span<const double> t) {
  require(!t.empty(), "latency metrics need at least one generated token");
  for (std::size_t i = 1; i < t.size(); ++i)
    require(t[i] >= t[i - 1], "token times must not decrease");
  LatencyMetrics m;
  m.tokens = static_cast<int>(t.size());
  m.ttft = t.front();
  m.total = t.back();
  m.throughput = m.total > 0 ? static_cast<double>(m.tokens) / m.total : 0.0;
  if (t.size() < 2) return m;  // one token: no inter-token gaps
  std::vector<double> gaps;
  for (std::size_t i = 1; i < t.size(); ++i) gaps.push_back(t[i] - t[i - 1]);
  m.tpot = (t.back() - t.front()) / static_cast<double>(gaps.size());
  std::sort(gaps.begin(), gaps.end());
  auto nearest_rank = [&](double p) {
    auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(gaps.size())));
    return gaps[std::clamp<std::size_t>(rank, 1, gaps.size()) - 1];
  };
  m.itl_p50 = nearest_rank(0.50);
  m.itl_p99 = nearest_rank(0.99);
  return m;
}

std::string describe(const LatencyMetrics& m) {
  char buffer[200];
  std::snprintf(buffer, sizeof buffer,
                "TTFT %.2f ms, TPOT %.2f ms, ITL p50 %.2f ms p99 %.2f ms, %.1f tok/s (%d tokens)",
                1e3 * m.ttft, 1e3 * m.tpot, 1e3 * m.itl_p50, 1e3 * m.itl_p99, m.throughput,
                m.tokens);
  return buffer;
}

}  // namespace lab
