#pragma once
/// \file
/// \brief Serving metrics of one generation (seed §10.2): TTFT, time per output token, inter-token
/// latency percentiles and throughput.

#include <span>
#include <string>

namespace lab {

/// Latency and throughput of one request, all in seconds (throughput in tokens/s).
struct LatencyMetrics {
  int tokens = 0;      ///< generated tokens
  double ttft = 0;     ///< time to first token (首标记生成时间): request start → token 1
  double tpot = 0;     ///< mean time per output token after the first: (t_n − t_1)/(n − 1)
  double itl_p50 = 0;  ///< median inter-token latency t_i − t_{i−1}
  double itl_p99 = 0;  ///< 99th percentile inter-token latency (nearest rank)
  double total = 0;    ///< request start → last token
  double throughput = 0;  ///< tokens / total
};

/// Metrics from the arrival times of the generated tokens, measured from the request's start
/// (non-decreasing, at least one). Percentiles use the nearest-rank rule.
LatencyMetrics latency_metrics(std::span<const double> token_times);

/// One line: "TTFT 12.3 ms, TPOT 4.5 ms, ITL p50 4.4 ms p99 6.0 ms, 210.4 tok/s (32 tokens)".
std::string describe(const LatencyMetrics& metrics);

}  // namespace lab
