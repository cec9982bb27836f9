#pragma once
/// \file
/// \brief Wall-clock timing on the host: warm-up, repeats, median and spread (Appendix B).

#include <functional>
#include <vector>

namespace lab {

struct TimingStats {
  std::vector<double> seconds;  ///< every timed repeat, in order
  double median = 0, min = 0, max = 0, p10 = 0, p90 = 0, mean = 0;
};

/// Summary statistics of a list of samples (seconds). Percentiles use the nearest-rank rule.
TimingStats summarize(std::vector<double> samples);

/// Runs `body` `warmup` times untimed, then `repeats` times timed with a steady clock. Median, not
/// mean: one interruption by the OS must not move the result.
TimingStats time_function(const std::function<void()>& body, int warmup, int repeats);

/// Seconds since construction, from a steady clock.
class Stopwatch {
 public:
  Stopwatch();
  double seconds() const;
  void reset();

 private:
  long long start_ns_;
};

}  // namespace lab
