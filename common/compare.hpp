#pragma once
/// \file
/// \brief The one comparison helper every cross-check in the course goes through.
///
/// Tolerances come from the arithmetic, not from trial and error (Appendix C): a length-n dot
/// product rounded to unit roundoff u has a typical relative error near √n·u (random-walk
/// accumulation) and a worst case near n·u. tolerance_for() takes the typical figure with a safety
/// factor and says so in its `reason`.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "common/dtype.hpp"

namespace lab {

struct Tolerance {
  double rel_l2 = 0;   ///< bound on ‖got − ref‖₂ / ‖ref‖₂
  std::string reason;  ///< how the number was derived, printed next to the result
};

/// Tolerance for a result computed with storage/arithmetic `dtype` through reductions of length
/// `reduction_length`, compounded over `depth` dependent stages (e.g. layers):
/// rel_l2 = safety · √n · u · depth, u the dtype's unit roundoff.
Tolerance tolerance_for(DType dtype, std::int64_t reduction_length, int depth = 1,
                        double safety = 8.0);

/// Tolerance for a result whose inputs are *stored* in `storage` (weights and activations rounded
/// once each to it) while the arithmetic accumulates in fp32, through `depth` dependent stages.
/// Rounding x to storage gives x(1 + δ) with |δ| ≤ u. In a dot product Σ wᵢxᵢ(1 + δᵢ) the error
/// Σ wᵢxᵢδᵢ is a random walk of the same length as the sum itself, so its relative size is ~u
/// whatever the length n (no √n: that is what fp32 accumulation buys). Each stage (layer) adds
/// such an independent error to the residual stream, and independent errors add in quadrature:
/// rel_l2 = safety · u · √depth. (tolerance_for() models accumulating *in* the dtype instead,
/// which grows as √n and is far too loose for bf16 storage with fp32 accumulation.)
Tolerance storage_tolerance(DType storage, int depth, double safety = 8.0);

struct CompareResult {
  double max_abs = 0;             ///< max |got − ref|
  std::size_t max_abs_index = 0;  ///< where it occurs
  double rel_l2 = 0;  ///< ‖got − ref‖₂ / ‖ref‖₂ (‖got‖₂ when ref is all zeros)
  double argmax_agreement = 1;  ///< share of rows whose argmax agrees (1 when rows == 0)
  std::size_t rows = 0;         ///< rows compared for argmax
  std::int64_t first_mismatch =
      -1;  ///< first index with |Δ| > rel_l2 tol · (|ref| + rms(ref)), -1: none
  std::int64_t first_argmax_mismatch = -1;  ///< first row whose argmax differs, -1: none
  bool non_finite = false;                  ///< a NaN or Inf in `got` where `ref` is finite
  double tolerance = 0;                     ///< the rel_l2 bound used
  double share_of_tolerance = 0;            ///< rel_l2 / tolerance (≤ 1 passes)
  bool passed = false;                      ///< finite, sizes equal and rel_l2 ≤ tolerance
};

/// Compares `got` against the reference `ref`. When `row_length` > 0 the data is read as rows of
/// that length (e.g. logits over the vocabulary) and argmax agreement is computed per row.
CompareResult compare(std::span<const float> ref, std::span<const float> got, const Tolerance& tol,
                      std::size_t row_length = 0);
CompareResult compare(std::span<const double> ref, std::span<const double> got,
                      const Tolerance& tol, std::size_t row_length = 0);

/// Argmax disagreements split by whether the reference row was a near-tie. In row r, a flip from
/// the reference's top entry i to another entry j needs δⱼ − δᵢ > refᵢ − refⱼ (δ = got − ref). With
/// errors of RMS σᵣ in that row, δⱼ − δᵢ has RMS √2·σᵣ, so a flip across a gap wider than
/// z·√2·σᵣ is a z-sigma event: a bug, not rounding. A row is *decisive* when its reference top-2
/// gap is at least that wide; a flip there is counted as unexplained.
struct ArgmaxTies {
  std::size_t rows = 0;
  std::size_t flips = 0;           ///< rows whose argmax differs
  std::size_t decisive_rows = 0;   ///< rows whose top-2 gap ≥ z·√2·σᵣ
  std::size_t decisive_flips = 0;  ///< flips in decisive rows (must be 0)
  std::int64_t first_decisive_flip = -1;
  double z = 0;
  /// Share of decisive rows whose argmax agrees (1 when there are none).
  double decisive_agreement() const {
    return decisive_rows ? 1.0 - static_cast<double>(decisive_flips) / decisive_rows : 1.0;
  }
};
ArgmaxTies argmax_ties(std::span<const float> ref, std::span<const float> got,
                       std::size_t row_length, double z = 4.0);
/// "argmax 98.4% of 64 rows; 1 flip, all at near-ties (gap < 4·√2·σ); 40 decisive rows agree".
std::string summary(const ArgmaxTies& ties);

/// One line: "rel L2 3.1e-07 (4% of 8.0e-06), max |Δ| 2.4e-06 at 117, argmax 100% of 16 rows:
/// PASS".
std::string summary(const CompareResult& result);

}  // namespace lab
