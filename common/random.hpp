#pragma once
/// \file
/// \brief A random generator whose algorithm is fixed, so that a seed gives the same numbers on
/// every platform and compiler (std::normal_distribution does not promise that).

#include <cstdint>

namespace lab {

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and good enough for weights and sampling.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}

  /// Next 64 random bits.
  std::uint64_t next_u64() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1p-53; }
  /// Uniform in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  /// Standard normal by Box-Muller (one of the pair; the algorithm, not the library, fixes it).
  double normal();
  /// Uniform integer in [0, n).
  std::uint64_t below(std::uint64_t n) { return next_u64() % n; }

 private:
  std::uint64_t state_;
};

}  // namespace lab
