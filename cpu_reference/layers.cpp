#include "cpu_reference/layers.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/error.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace lab::cpu {

std::string to_string(AttentionMask mask) {
  return mask == AttentionMask::Causal ? "causal" : "bidirectional";
}

AttentionMask parse_attention_mask(const std::string& text) {
  if (text == "causal") return AttentionMask::Causal;
  if (text == "bidirectional") return AttentionMask::Bidirectional;
  throw Error("--mask: '" + text + "' is not a mask (allowed: causal, bidirectional)");
}

//! [rms_norm]
template <typename T>
Matrix<T> rms_norm(const Matrix<T>& x, const Vector<T>& gain, double eps) {
  Matrix<T> y(x.rows(), x.cols());  // (n, D)
  const T d = static_cast<T>(x.cols());
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    // Mean of squares in the working precision, as HF does for an fp32 model.
    const T mean_square = x.row(r).squaredNorm() / d;
    const T inv_rms = T(1) / std::sqrt(mean_square + static_cast<T>(eps));
    y.row(r) = (x.row(r) * inv_rms).cwiseProduct(gain.transpose());
  }
  return y;
}
//! [rms_norm]

std::vector<double> rope_inverse_frequencies(int head_dim, double theta) {
  std::vector<double> inv_freq(static_cast<std::size_t>(head_dim / 2));
  for (int i = 0; i < head_dim / 2; ++i)
    inv_freq[static_cast<std::size_t>(i)] = std::pow(theta, -2.0 * i / head_dim);
  return inv_freq;
}

//! [rope]
template <typename T>
void apply_rope(Matrix<T>& x, int heads, int head_dim, int first_position,
                const std::vector<double>& inv_freq) {
  const int half = head_dim / 2;
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    const double pos = static_cast<double>(first_position + r);
    for (int i = 0; i < half; ++i) {
      // The angle in double: at position 8000 an fp32 angle would already be off by ~1e-3 rad.
      const double angle = pos * inv_freq[static_cast<std::size_t>(i)];
      const T c = static_cast<T>(std::cos(angle)), s = static_cast<T>(std::sin(angle));
      for (int h = 0; h < heads; ++h) {
        T& a = x(r, h * head_dim + i);         // first half
        T& b = x(r, h * head_dim + i + half);  // its partner in the second half
        const T a0 = a, b0 = b;
        a = a0 * c - b0 * s;  // q·cos + rotate_half(q)·sin, rotate_half(q) = (−q₂, q₁)
        b = b0 * c + a0 * s;
      }
    }
  }
}
//! [rope]

//! [attention]
template <typename T>
Matrix<T> attention(const Matrix<T>& q, const Eigen::Ref<const Matrix<T>>& k,
                    const Eigen::Ref<const Matrix<T>>& v, int num_heads, int num_kv_heads, int past,
                    AttentionMask mask) {
  const Eigen::Index n = q.rows(), keys = k.rows();
  const int d = static_cast<int>(q.cols()) / num_heads;
  const int group = num_heads / num_kv_heads;  // query heads per key/value head
  const T scale = T(1) / std::sqrt(static_cast<T>(d));
  const T minus_inf = -std::numeric_limits<T>::infinity();
  Matrix<T> out(n, q.cols());  // (n, H·d)
  for (int h = 0; h < num_heads; ++h) {
    const int g = h / group;  // the shared key/value head, as HF's repeat_kv arranges it
    // Scores S = Q_h K_gᵀ / sqrt(d): (n, keys).
    Matrix<T> s = (q.middleCols(h * d, d) * k.middleCols(g * d, d).transpose()) * scale;
    for (Eigen::Index i = 0; i < n; ++i) {
      // Causal: the query at position past + i may not see keys after itself.
      const Eigen::Index visible = mask == AttentionMask::Causal ? past + i + 1 : keys;
      for (Eigen::Index j = visible; j < keys; ++j) s(i, j) = minus_inf;
      // Softmax of the row, shifted by its maximum so that exp never overflows.
      const T row_max = s.row(i).maxCoeff();
      s.row(i) = (s.row(i).array() - row_max).exp();
      s.row(i) /= s.row(i).sum();
    }
    out.middleCols(h * d, d) = s * v.middleCols(g * d, d);  // (n, d)
  }
  return out;
}
//! [attention]

//! [swiglu]
template <typename T>
Matrix<T> swiglu(const Matrix<T>& gate, const Matrix<T>& up) {
  const auto silu = gate.array() / (T(1) + (-gate.array()).exp());
  return (silu * up.array()).matrix();
}
//! [swiglu]

template <typename T>
Matrix<T> linear(const Matrix<T>& x, const Matrix<T>& weight) {
  Matrix<T> y(x.rows(), weight.rows());  // (n, out)
  if (x.rows() != 1) {
    // GEMM: Eigen blocks it for the caches and threads it. A small one (under ~1 ms of work) runs
    // on one thread: on a busy machine, waiting for a second thread can cost more than the work.
    const double work = static_cast<double>(x.rows()) * static_cast<double>(weight.size());
    const bool small = work < double(1 << 24);
    if (small) Eigen::setNbThreads(1);
    y.noalias() = x * weight.transpose();
    if (small) Eigen::setNbThreads(num_threads());
    return y;
  }
  // Decode: a matrix-vector product reads every weight once and does 2 FLOPs with it, so it is
  // bound by memory bandwidth. Eigen's GEMV is single-threaded; one core cannot saturate the memory
  // bus, so split the output rows over the threads.
  const Eigen::Index rows = weight.rows();
  const int threads = num_threads();
  const Eigen::Index chunk = (rows + threads - 1) / threads;
  // Below ~1 MB a matrix sits in cache and waking threads costs more than it saves.
  const bool parallel = threads > 1 && weight.size() >= (1 << 18);
#pragma omp parallel for num_threads(threads) schedule(static) if (parallel)
  for (int t = 0; t < threads; ++t) {
    const Eigen::Index begin = std::min<Eigen::Index>(rows, t * chunk);
    const Eigen::Index count = std::min<Eigen::Index>(rows, begin + chunk) - begin;
    if (count > 0)
      y.middleCols(begin, count).noalias() = x * weight.middleRows(begin, count).transpose();
  }
  return y;
}

namespace {
int g_threads = 0;  // 0: not set, use all cores
}

void set_num_threads(int threads) {
  require(threads >= 0, "--threads must not be negative");
  g_threads = threads;
  Eigen::setNbThreads(num_threads());
}

int num_threads() {
#ifdef _OPENMP
  return g_threads > 0 ? g_threads : omp_get_num_procs();
#else
  return 1;
#endif
}

#define LAB_INSTANTIATE(T)                                                              \
  template Matrix<T> rms_norm<T>(const Matrix<T>&, const Vector<T>&, double);           \
  template void apply_rope<T>(Matrix<T>&, int, int, int, const std::vector<double>&);   \
  template Matrix<T> attention<T>(const Matrix<T>&, const Eigen::Ref<const Matrix<T>>&, \
                                  const Eigen::Ref<const Matrix<T>>&, int, int, int,    \
                                  AttentionMask);                                       \
  template Matrix<T> swiglu<T>(const Matrix<T>&, const Matrix<T>&);                     \
  template Matrix<T> linear<T>(const Matrix<T>&, const Matrix<T>&);
LAB_INSTANTIATE(float)
LAB_INSTANTIATE(double)
#undef LAB_INSTANTIATE

}  // namespace lab::cpu
