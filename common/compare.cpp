#include "common/compare.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/error.hpp"

namespace lab {

//! [tolerance_for]
Tolerance tolerance_for(DType dtype, std::int64_t reduction_length, int depth, double safety) {
  require(reduction_length >= 1, "reduction_length must be at least 1");
  require(depth >= 1, "depth must be at least 1");
  const double u = unit_roundoff(dtype);
  Tolerance t;
  t.rel_l2 = safety * std::sqrt(static_cast<double>(reduction_length)) * u * depth;
  char buffer[160];
  std::snprintf(buffer, sizeof buffer, "%.0f x sqrt(n=%lld) x u(%s)=%.1e x depth %d", safety,
                static_cast<long long>(reduction_length), to_string(dtype).c_str(), u, depth);
  t.reason = buffer;
  return t;
}
//! [tolerance_for]

//! [storage_tolerance]
Tolerance storage_tolerance(DType storage, int depth, double safety) {
  require(depth >= 1, "depth must be at least 1");
  const double u = unit_roundoff(storage);
  Tolerance t;
  t.rel_l2 = safety * u * std::sqrt(static_cast<double>(depth));
  char buffer[160];
  std::snprintf(buffer, sizeof buffer, "%.0f x u(%s)=%.1e x sqrt(depth %d), fp32 accumulation",
                safety, to_string(storage).c_str(), u, depth);
  t.reason = buffer;
  return t;
}
//! [storage_tolerance]

namespace {

template <typename T>
CompareResult compare_impl(std::span<const T> ref, std::span<const T> got, const Tolerance& tol,
                           std::size_t row_length) {
  require(ref.size() == got.size(), "compare: sizes differ (" + std::to_string(ref.size()) +
                                        " vs " + std::to_string(got.size()) + ")");
  require(tol.rel_l2 > 0, "compare: tolerance must be positive");
  CompareResult r;
  r.tolerance = tol.rel_l2;
  double diff2 = 0, ref2 = 0, got2 = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double a = static_cast<double>(ref[i]), b = static_cast<double>(got[i]);
    if (!std::isfinite(b) && std::isfinite(a)) r.non_finite = true;
    const double d = std::abs(b - a);
    if (d > r.max_abs || (std::isnan(d) && !std::isnan(r.max_abs))) {
      r.max_abs = d;
      r.max_abs_index = i;
    }
    diff2 += (b - a) * (b - a);
    ref2 += a * a;
    got2 += b * b;
  }
  r.rel_l2 = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(got2);
  // Element-wise threshold: the relative tolerance applied to |ref| plus the reference's RMS, so
  // that elements near zero are judged against the scale of the whole tensor.
  const double rms = ref.empty() ? 0.0 : std::sqrt(ref2 / static_cast<double>(ref.size()));
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double a = static_cast<double>(ref[i]), b = static_cast<double>(got[i]);
    if (!(std::abs(b - a) <= tol.rel_l2 * (std::abs(a) + rms))) {
      r.first_mismatch = static_cast<std::int64_t>(i);
      break;
    }
  }
  if (row_length > 0) {
    require(ref.size() % row_length == 0, "compare: size is not a multiple of row_length");
    r.rows = ref.size() / row_length;
    std::size_t agree = 0;
    for (std::size_t row = 0; row < r.rows; ++row) {
      auto a = ref.subspan(row * row_length, row_length);
      auto b = got.subspan(row * row_length, row_length);
      const auto ia = std::max_element(a.begin(), a.end()) - a.begin();
      const auto ib = std::max_element(b.begin(), b.end()) - b.begin();
      if (ia == ib)
        ++agree;
      else if (r.first_argmax_mismatch < 0)
        r.first_argmax_mismatch = static_cast<std::int64_t>(row);
    }
    r.argmax_agreement = r.rows ? static_cast<double>(agree) / static_cast<double>(r.rows) : 1.0;
  }
  r.share_of_tolerance = r.rel_l2 / tol.rel_l2;
  r.passed = !r.non_finite && std::isfinite(r.rel_l2) && r.rel_l2 <= tol.rel_l2;
  return r;
}

}  // namespace

CompareResult compare(std::span<const float> ref, std::span<const float> got, const Tolerance& tol,
                      std::size_t row_length) {
  return compare_impl(ref, got, tol, row_length);
}

CompareResult compare(std::span<const double> ref, std::span<const double> got,
                      const Tolerance& tol, std::size_t row_length) {
  return compare_impl(ref, got, tol, row_length);
}

ArgmaxTies argmax_ties(std::span<const float> ref, std::span<const float> got,
                       std::size_t row_length, double z) {
  require(ref.size() == got.size(), "argmax_ties: sizes differ");
  require(row_length > 0 && ref.size() % row_length == 0,
          "argmax_ties: size is not a multiple of row_length");
  ArgmaxTies t;
  t.z = z;
  t.rows = ref.size() / row_length;
  for (std::size_t row = 0; row < t.rows; ++row) {
    const auto a = ref.subspan(row * row_length, row_length);
    const auto b = got.subspan(row * row_length, row_length);
    std::size_t top = 0, second = row_length > 1 ? 1 : 0, got_top = 0;
    if (row_length > 1 && a[1] > a[0]) std::swap(top, second);
    double err2 = 0;
    for (std::size_t i = 0; i < row_length; ++i) {
      err2 += (static_cast<double>(b[i]) - a[i]) * (static_cast<double>(b[i]) - a[i]);
      if (b[i] > b[got_top]) got_top = i;
      if (i < 2) continue;
      if (a[i] > a[top]) {
        second = top;
        top = i;
      } else if (a[i] > a[second]) {
        second = i;
      }
    }
    const double sigma = std::sqrt(err2 / static_cast<double>(row_length));
    const double gap = static_cast<double>(a[top]) - a[second];
    const bool decisive = gap >= z * std::sqrt(2.0) * sigma;
    const bool flip = a[got_top] != a[top];  // equal logits are a tie, not a flip
    t.flips += flip;
    t.decisive_rows += decisive;
    if (flip && decisive) {
      ++t.decisive_flips;
      if (t.first_decisive_flip < 0) t.first_decisive_flip = static_cast<std::int64_t>(row);
    }
  }
  return t;
}

std::string summary(const ArgmaxTies& t) {
  char buffer[256];
  std::snprintf(buffer, sizeof buffer,
                "argmax %.1f%% of %zu rows; %zu flips, %zu of them at decisive rows (top-2 gap >= "
                "%.0f*sqrt2*sigma); %zu decisive rows",
                t.rows ? 100.0 * (1.0 - static_cast<double>(t.flips) / t.rows) : 100.0, t.rows,
                t.flips, t.decisive_flips, t.z, t.decisive_rows);
  return buffer;
}

std::string summary(const CompareResult& r) {
  char buffer[256];
  int n = std::snprintf(buffer, sizeof buffer, "rel L2 %.2e (%.0f%% of %.1e), max |d| %.2e at %zu",
                        r.rel_l2, 100.0 * r.share_of_tolerance, r.tolerance, r.max_abs,
                        r.max_abs_index);
  if (r.rows > 0 && n > 0 && static_cast<std::size_t>(n) < sizeof buffer)
    n += std::snprintf(buffer + n, sizeof buffer - static_cast<std::size_t>(n),
                       ", argmax %.1f%% of %zu rows", 100.0 * r.argmax_agreement, r.rows);
  std::string s = buffer;
  if (r.non_finite) s += ", NaN/Inf found";
  s += r.passed ? ": PASS" : ": FAIL";
  return s;
}

}  // namespace lab
