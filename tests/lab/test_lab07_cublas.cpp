// Lab 7: the row-major linear layer on column-major cuBLAS. The plan (which operand, which
// transpose, which leading dimension) is run on the CPU through an emulator of cublasGemmEx's
// column-major contract, so it is graded without a GPU; the GPU results are compared with a CPU
// loop in double on non-square shapes that are no multiple of 8.
// ctest-labels: gpu
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "common/compare.hpp"
#include "common/error.hpp"
#include "common/random.hpp"
#include "lab.hpp"
#include "tests/gpu/gpu_test.hpp"

namespace {

using lab07::GemmPlan;
using lab07::Operand;
using lab07::Precision;

struct Shape {
  int n, in, out;  // y (n, out) = x (n, in) · W (out, in)ᵀ
};

std::string describe(const Shape& s) {
  return "n=" + std::to_string(s.n) + " in=" + std::to_string(s.in) +
         " out=" + std::to_string(s.out);
}

std::vector<float> random_values(lab::Rng& rng, std::size_t count) {
  std::vector<float> v(count);
  for (float& e : v) e = static_cast<float>(rng.normal());
  return v;
}

std::vector<float> rounded_to_bf16(const std::vector<float>& v) {
  std::vector<float> r(v.size());
  std::transform(v.begin(), v.end(), r.begin(),
                 [](float e) { return lab07::from_bf16(lab07::to_bf16(e)); });
  return r;
}

std::vector<std::uint16_t> bf16_bits(const std::vector<float>& v) {
  std::vector<std::uint16_t> r(v.size());
  std::transform(v.begin(), v.end(), r.begin(), [](float e) { return lab07::to_bf16(e); });
  return r;
}

// y[i, o] = Σ_c x[i, c] · W[o, c] in double, row-major (n, out): the oracle.
std::vector<double> linear_reference(const std::vector<float>& x, const std::vector<float>& w,
                                     const Shape& s) {
  std::vector<double> y(static_cast<std::size_t>(s.n) * static_cast<std::size_t>(s.out));
  for (int i = 0; i < s.n; ++i)
    for (int o = 0; o < s.out; ++o) {
      double acc = 0;
      for (int c = 0; c < s.in; ++c)
        acc += static_cast<double>(x[static_cast<std::size_t>(i) * s.in + c]) *
               static_cast<double>(w[static_cast<std::size_t>(o) * s.in + c]);
      y[static_cast<std::size_t>(i) * s.out + o] = acc;
    }
  return y;
}

// The same values laid out column-major, (n, out) with leading dimension n: what a GEMM that
// computed the right numbers but wrote C as y itself (not yᵀ) leaves in memory.
std::vector<double> transposed(const std::vector<double>& y, int rows, int cols) {
  std::vector<double> t(y.size());
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j)
      t[static_cast<std::size_t>(j) * rows + i] = y[static_cast<std::size_t>(i) * cols + j];
  return t;
}

// A wrong answer that is the right answer in the wrong layout gets a hint.
std::string layout_hint(const std::vector<double>& got, const std::vector<double>& ref,
                        const Shape& s, const lab::Tolerance& tol) {
  const auto t = transposed(ref, s.n, s.out);
  if (lab::compare(std::span<const double>(t), std::span<const double>(got), tol).passed)
    return " -- these are the right numbers stored column-major (n, out), i.e. y transposed: "
           "cuBLAS writes C column-major, so C must be yᵀ (out × n) for y to come out row-major";
  return "";
}

// --- An emulator of cublasGemmEx on host arrays. ---

// A host array as cuBLAS would receive it: an address and its size in bytes.
struct HostArray {
  const void* data;
  std::size_t bytes;
};

std::size_t element_size(cudaDataType_t type) {
  return type == CUDA_R_32F ? 4 : type == CUDA_R_16BF ? 2 : 0;
}

double element(const HostArray& a, cudaDataType_t type, std::size_t index) {
  if (type == CUDA_R_32F) return static_cast<const float*>(a.data)[index];
  return lab07::from_bf16(static_cast<const std::uint16_t*>(a.data)[index]);
}

struct Emulated {
  std::vector<double> c;  // y as cuBLAS would leave it (NaN where it writes nothing)
  std::string error;      // non-empty: cuBLAS would refuse the call, or read past an array
};

// Checks one operand of the plan and returns "" or what is wrong with it. `rows` × `cols` is the
// matrix as stored (before op), column-major with leading dimension `ld`.
std::string check_operand(const char* name, Operand which, cudaDataType_t type, int rows, int cols,
                          int ld, const HostArray& array) {
  const std::string label =
      std::string(name) + (which == Operand::Weight ? " (the weight W)" : " (the input x)");
  if (element_size(type) == 0) return label + ": an element type this lab does not use";
  if (ld < std::max(1, rows))
    return label + ": ld" + name + " = " + std::to_string(ld) + " is below the " +
           std::to_string(rows) +
           " rows of the matrix as stored; cuBLAS returns CUBLAS_STATUS_INVALID_VALUE";
  const std::size_t last = static_cast<std::size_t>(rows - 1) +
                           static_cast<std::size_t>(cols - 1) * static_cast<std::size_t>(ld);
  const std::size_t count = array.bytes / element_size(type);
  if (last >= count)
    return label + ": reads element " + std::to_string(last) + " of an array of " +
           std::to_string(count) + " elements of this type: past its end";
  return "";
}

// C = op(A) · op(B) exactly as cuBLAS defines it (column-major, leading dimensions), in double,
// with C of `c_count` floats (y). alpha = 1, beta = 0.
Emulated emulate_gemm(const GemmPlan& p, const HostArray& x, const HostArray& w,
                      std::size_t c_count) {
  Emulated r;
  if (p.m <= 0 || p.n <= 0 || p.k <= 0) {
    r.error = "m, n and k must be positive here (m=" + std::to_string(p.m) +
              " n=" + std::to_string(p.n) + " k=" + std::to_string(p.k) + ")";
    return r;
  }
  for (const cublasOperation_t op : {p.transa, p.transb})
    if (op != CUBLAS_OP_N && op != CUBLAS_OP_T && op != CUBLAS_OP_C) {
      r.error = "transa and transb must be CUBLAS_OP_N or CUBLAS_OP_T";
      return r;
    }
  // CUBLAS_OP_C is the conjugate transpose: the transpose, for real numbers.
  const bool ta = p.transa != CUBLAS_OP_N, tb = p.transb != CUBLAS_OP_N;
  const HostArray& a = p.a == Operand::Weight ? w : x;
  const HostArray& b = p.b == Operand::Weight ? w : x;
  // op(A) is m × k, so A as stored is m × k, or k × m when transposed; op(B) is k × n.
  r.error = check_operand("a", p.a, p.a_type, ta ? p.k : p.m, ta ? p.m : p.k, p.lda, a);
  if (r.error.empty())
    r.error = check_operand("b", p.b, p.b_type, tb ? p.n : p.k, tb ? p.k : p.n, p.ldb, b);
  if (!r.error.empty()) return r;
  if (p.c_type != CUDA_R_32F) {
    r.error = "c: y is an fp32 array (CUDA_R_32F)";
    return r;
  }
  if (p.ldc < std::max(1, p.m)) {
    r.error = "ldc = " + std::to_string(p.ldc) + " is below the " + std::to_string(p.m) +
              " rows of C; cuBLAS returns CUBLAS_STATUS_INVALID_VALUE";
    return r;
  }
  const auto ldc = static_cast<std::size_t>(p.ldc);
  if (static_cast<std::size_t>(p.m - 1) + static_cast<std::size_t>(p.n - 1) * ldc >= c_count) {
    r.error = "c: writes past the end of y (" + std::to_string(c_count) + " elements)";
    return r;
  }
  // Offset of element (row, col) of op(matrix), the matrix stored column-major with `ld`.
  const auto at = [](bool op_t, std::size_t row, std::size_t col, std::size_t ld) {
    return op_t ? col + row * ld : row + col * ld;
  };
  const auto lda = static_cast<std::size_t>(p.lda), ldb = static_cast<std::size_t>(p.ldb);
  r.c.assign(c_count, std::numeric_limits<double>::quiet_NaN());
  for (std::size_t j = 0; j < static_cast<std::size_t>(p.n); ++j)
    for (std::size_t i = 0; i < static_cast<std::size_t>(p.m); ++i) {
      double acc = 0;
      for (std::size_t l = 0; l < static_cast<std::size_t>(p.k); ++l)
        acc += element(a, p.a_type, at(ta, i, l, lda)) * element(b, p.b_type, at(tb, l, j, ldb));
      r.c[i + j * ldc] = acc;
    }
  return r;
}

// Emulates `plan` on random x and W of shape `s` (fp32 or bf16 bits, by the plan's element types)
// and returns "" when it yields the row-major y = x Wᵀ, else why not.
std::string plan_error(const GemmPlan& plan, const Shape& s, lab::Rng& rng) {
  const auto x = rounded_to_bf16(random_values(rng, static_cast<std::size_t>(s.n) * s.in));
  const auto w = rounded_to_bf16(random_values(rng, static_cast<std::size_t>(s.out) * s.in));
  // Values exact in bf16, so that the reference is the same whichever type the plan reads.
  const auto x16 = bf16_bits(x), w16 = bf16_bits(w);
  const bool bf16 = plan.a_type == CUDA_R_16BF;  // what the plan says x and W are
  const HostArray hx =
      bf16 ? HostArray{x16.data(), x16.size() * 2} : HostArray{x.data(), x.size() * 4};
  const HostArray hw =
      bf16 ? HostArray{w16.data(), w16.size() * 2} : HostArray{w.data(), w.size() * 4};
  const Emulated e = emulate_gemm(plan, hx, hw, static_cast<std::size_t>(s.n) * s.out);
  if (!e.error.empty()) return e.error;
  const auto ref = linear_reference(x, w, s);
  // The emulator and the oracle add the same products in the same order, in double: any
  // difference above rounding is a wrong mapping.
  const auto tol = lab::tolerance_for(lab::DType::FP32, s.in);
  const auto r = lab::compare(std::span<const double>(ref), std::span<const double>(e.c), tol);
  if (r.passed) return "";
  return "wrong y: " + lab::summary(r) + layout_hint(e.c, ref, s, tol);
}

// Non-square, no dimension a multiple of 8, and n, in and out all different, so that every
// swapped operand, transpose or leading dimension shows up (checked in PlanMapsRowMajor...).
const Shape kPlanShapes[] = {{7, 13, 9}, {5, 11, 3}, {3, 5, 17}, {1, 1, 1}, {1, 19, 6}, {33, 6, 2}};

TEST(Lab07, PlanMapsRowMajorLinearOntoColumnMajorGemm) {
  lab::Rng rng(7);
  for (const Shape& s : kPlanShapes)
    for (const Precision p : {Precision::FP32, Precision::TF32, Precision::BF16}) {
      const GemmPlan plan = lab07::plan_linear(s.n, s.in, s.out, p);
      EXPECT_EQ(plan_error(plan, s, rng), "") << describe(s) << ", precision " << int(p);
    }
}

struct Mistake {
  const char* what;
  GemmPlan plan;
};

// The classic mistakes, each made to a correct plan `good` for shape `s`.
std::vector<Mistake> classic_mistakes(const GemmPlan& good, const Shape& s) {
  const auto flip = [](cublasOperation_t op) {
    return op == CUBLAS_OP_N ? CUBLAS_OP_T : CUBLAS_OP_N;
  };
  std::vector<Mistake> mistakes;
  GemmPlan p = good;
  std::swap(p.a, p.b);
  mistakes.push_back({"A and B swapped", p});
  p = good;
  p.transa = flip(p.transa);
  mistakes.push_back({"op(A) flipped", p});
  p = good;
  p.transb = flip(p.transb);
  mistakes.push_back({"op(B) flipped", p});
  p = good;
  std::swap(p.m, p.n);
  mistakes.push_back({"m and n swapped", p});
  p = good;
  p.lda = p.a == Operand::Weight ? s.out : s.n;  // the other dimension of the array
  mistakes.push_back({"lda = the array's other dimension", p});
  p = good;
  p.ldb = p.b == Operand::Weight ? s.out : s.n;
  mistakes.push_back({"ldb = the array's other dimension", p});
  p = good;
  p.ldc = p.ldc == s.out ? s.n : s.out;
  mistakes.push_back({"ldc = the other dimension of y", p});
  // y computed as C = x Wᵀ directly: right numbers, column-major, i.e. stored transposed.
  p = good;
  std::swap(p.a, p.b);
  std::swap(p.transa, p.transb);
  p.transa = flip(p.transa);
  p.transb = flip(p.transb);
  std::swap(p.lda, p.ldb);
  std::swap(p.m, p.n);
  p.ldc = p.m;
  mistakes.push_back({"C = y column-major", p});
  return mistakes;
}

// The classic mistakes, made to the plan under test: each must give a wrong y on these shapes
// (this checks that the shapes and the emulator catch them), while the plan itself must not.
TEST(Lab07, PlanIsNotOneOfTheClassicMistakes) {
  lab::Rng rng(77);
  // n < out and n > out: each mistake reads past x or W, gives a leading dimension cuBLAS refuses,
  // writes past y, or leaves the right numbers in the wrong places.
  for (const Shape& s : {kPlanShapes[0], kPlanShapes[5]}) {
    const GemmPlan good = lab07::plan_linear(s.n, s.in, s.out, Precision::FP32);
    ASSERT_EQ(plan_error(good, s, rng), "")
        << describe(s) << ": fix PlanMapsRowMajorLinearOntoColumnMajorGemm first";
    for (const Mistake& m : classic_mistakes(good, s))
      EXPECT_NE(plan_error(m.plan, s, rng), "")
          << describe(s) << ": " << m.what << " was not caught";
  }
}

TEST(Lab07, PlanPicksStorageAndComputeTypes) {
  const GemmPlan fp32 = lab07::plan_linear(7, 13, 9, Precision::FP32);
  const GemmPlan tf32 = lab07::plan_linear(7, 13, 9, Precision::TF32);
  const GemmPlan bf16 = lab07::plan_linear(7, 13, 9, Precision::BF16);
  for (const GemmPlan* p : {&fp32, &tf32}) {
    EXPECT_EQ(p->a_type, CUDA_R_32F) << "fp32 and TF32 read fp32 arrays";
    EXPECT_EQ(p->b_type, CUDA_R_32F) << "fp32 and TF32 read fp32 arrays";
  }
  EXPECT_EQ(bf16.a_type, CUDA_R_16BF) << "BF16: x and W are stored in bf16";
  EXPECT_EQ(bf16.b_type, CUDA_R_16BF) << "BF16: x and W are stored in bf16";
  for (const GemmPlan* p : {&fp32, &tf32, &bf16}) EXPECT_EQ(p->c_type, CUDA_R_32F) << "y is fp32";
  EXPECT_EQ(fp32.compute_type, CUBLAS_COMPUTE_32F) << "fp32 must not round its inputs";
  EXPECT_EQ(tf32.compute_type, CUBLAS_COMPUTE_32F_FAST_TF32)
      << "TF32 is chosen by the compute type; the arrays stay fp32";
  EXPECT_EQ(bf16.compute_type, CUBLAS_COMPUTE_32F) << "bf16 products, fp32 accumulation";
  // The precision changes the types, never the mapping.
  for (const GemmPlan* p : {&tf32, &bf16}) {
    EXPECT_TRUE(p->a == fp32.a && p->b == fp32.b && p->transa == fp32.transa &&
                p->transb == fp32.transb && p->m == fp32.m && p->n == fp32.n && p->k == fp32.k &&
                p->lda == fp32.lda && p->ldb == fp32.ldb && p->ldc == fp32.ldc);
  }
  EXPECT_THROW(lab07::plan_linear(0, 3, 4, Precision::FP32), lab::Error);
  EXPECT_THROW(lab07::plan_linear(2, -3, 4, Precision::BF16), lab::Error);
  EXPECT_THROW(lab07::plan_linear(2, 3, 0, Precision::TF32), lab::Error);
}

// --- On the GPU. ---

// 1×1×1; non-square shapes with no dimension a multiple of 8; a long reduction; a wide output;
// more rows than columns and the reverse.
const Shape kGpuShapes[] = {{1, 1, 1},      {7, 13, 9},     {33, 65, 129}, {5, 1001, 3},
                            {130, 17, 301}, {3, 257, 1031}, {61, 515, 77}};

// Runs linear_fp32 on random data and compares it with the oracle under `dtype`'s tolerance.
void check_fp32(bool tf32, lab::DType dtype, std::uint64_t seed) {
  lab::Rng rng(seed);
  for (const Shape& s : kGpuShapes) {
    const auto x = random_values(rng, static_cast<std::size_t>(s.n) * s.in);
    const auto w = random_values(rng, static_cast<std::size_t>(s.out) * s.in);
    // Poison: an output cuBLAS never writes stays NaN and fails the comparison.
    std::vector<float> y(static_cast<std::size_t>(s.n) * s.out,
                         std::numeric_limits<float>::quiet_NaN());
    lab07::linear_fp32(x.data(), w.data(), y.data(), s.n, s.in, s.out, tf32);
    const auto ref = linear_reference(x, w, s);
    const std::vector<double> got(y.begin(), y.end());
    const auto tol = lab::tolerance_for(dtype, s.in);
    const auto r = lab::compare(std::span<const double>(ref), std::span<const double>(got), tol);
    EXPECT_TRUE(r.passed) << describe(s) << (tf32 ? " tf32: " : " fp32: ") << lab::summary(r)
                          << layout_hint(got, ref, s, tol);
  }
}

TEST(Lab07, Fp32MatchesCpuLoopOnOddShapes) {
  LAB_REQUIRE_GPU();
  // fp32 products summed in fp32 over `in` terms (Appendix C): 8·√in·u(fp32).
  check_fp32(false, lab::DType::FP32, 71);
}

TEST(Lab07, Tf32MatchesCpuLoopWithinTf32Rounding) {
  LAB_REQUIRE_GPU();
  // The tensor cores round each input to TF32's 10 mantissa bits, fp16's precision: so u = 2^-11,
  // DType::FP16's, against the exact products of the oracle.
  check_fp32(true, lab::DType::FP16, 72);
}

TEST(Lab07, Bf16MatchesCpuLoopOverRoundedInputs) {
  LAB_REQUIRE_GPU();
  lab::Rng rng(73);
  for (const Shape& s : kGpuShapes) {
    const auto x = rounded_to_bf16(random_values(rng, static_cast<std::size_t>(s.n) * s.in));
    const auto w = rounded_to_bf16(random_values(rng, static_cast<std::size_t>(s.out) * s.in));
    const auto x16 = bf16_bits(x), w16 = bf16_bits(w);
    std::vector<float> y(static_cast<std::size_t>(s.n) * s.out,
                         std::numeric_limits<float>::quiet_NaN());
    lab07::linear_bf16(x16.data(), w16.data(), y.data(), s.n, s.in, s.out);
    // The oracle gets the same bf16 values, so only the accumulation differs: fp32's tolerance.
    // Reading the bits as fp16 (CUDA_R_16F) or accumulating in bf16 misses it by orders.
    const auto ref = linear_reference(x, w, s);
    const std::vector<double> got(y.begin(), y.end());
    const auto tol = lab::tolerance_for(lab::DType::FP32, s.in);
    const auto r = lab::compare(std::span<const double>(ref), std::span<const double>(got), tol);
    EXPECT_TRUE(r.passed) << describe(s) << " bf16: " << lab::summary(r)
                          << layout_hint(got, ref, s, tol);
  }
}

TEST(Lab07, EmptyShapesAndErrors) {
  LAB_REQUIRE_GPU();
  const std::vector<float> x(6, 1.5f), w(6, -2.0f);
  const std::vector<std::uint16_t> x16(6, lab07::to_bf16(1.5f)), w16(6, lab07::to_bf16(-2.0f));
  std::vector<float> y(6, 7.0f);
  // n = 0 or out = 0: nothing to compute, nothing written.
  lab07::linear_fp32(x.data(), w.data(), y.data(), 0, 3, 2, false);
  lab07::linear_fp32(x.data(), w.data(), y.data(), 2, 3, 0, true);
  lab07::linear_bf16(x16.data(), w16.data(), y.data(), 0, 3, 2);
  EXPECT_EQ(y, std::vector<float>(6, 7.0f));
  // in = 0: every output is an empty sum.
  lab07::linear_fp32(x.data(), w.data(), y.data(), 2, 0, 3, false);
  EXPECT_EQ(y, std::vector<float>(6, 0.0f));
  y.assign(6, 7.0f);
  lab07::linear_bf16(x16.data(), w16.data(), y.data(), 3, 0, 2);
  EXPECT_EQ(y, std::vector<float>(6, 0.0f));
  EXPECT_THROW(lab07::linear_fp32(x.data(), w.data(), y.data(), -1, 2, 2, false), lab::Error);
  EXPECT_THROW(lab07::linear_fp32(x.data(), w.data(), y.data(), 2, 2, -2, true), lab::Error);
  EXPECT_THROW(lab07::linear_bf16(x16.data(), w16.data(), y.data(), 2, -1, 2), lab::Error);
}

}  // namespace
