#pragma once
/// \file
/// \brief Lab 7 interface (frozen): the course's row-major linear layer on column-major cuBLAS, in
/// fp32, TF32 and bf16 (fp32 accumulation).
///
/// Host code only: cublas_v2.h declares the cuBLAS enums and functions for the host compiler, so
/// the GoogleTest file needs no nvcc. All pointers are host pointers; the implementation allocates
/// device memory, copies, calls cublasGemmEx and copies back. bf16 values cross this interface as
/// their 16 bits (std::uint16_t); to_bf16() and from_bf16() convert on the host.

#include <cublas_v2.h>

#include <cstdint>
#include <cstring>

/// Lab 7: cuBLAS.
namespace lab07 {

/// fp32 → bf16 bits, rounding to nearest, ties to even (finite inputs): bf16 keeps the top 16
/// bits of an fp32 (sign, 8 exponent bits, 7 mantissa bits).
inline std::uint16_t to_bf16(float value) {
  std::uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  bits += 0x7FFFu + ((bits >> 16) & 1u);  // round half to even on the dropped 16 bits
  return static_cast<std::uint16_t>(bits >> 16);
}

/// bf16 bits → fp32 (exact).
inline float from_bf16(std::uint16_t bits) {
  const std::uint32_t wide = static_cast<std::uint32_t>(bits) << 16;
  float value = 0;
  std::memcpy(&value, &wide, sizeof value);
  return value;
}

/// How the product is stored and computed.
enum class Precision {
  FP32,  ///< fp32 arrays, fp32 FMA units
  TF32,  ///< fp32 arrays, tensor cores that round the inputs to TF32 (10 mantissa bits)
  BF16,  ///< bf16 x and W, fp32 y, tensor cores, fp32 accumulation
};

/// The two arrays of y = x Wᵀ; a plan says which one cuBLAS reads as its A and which as its B.
enum class Operand {
  Input,   ///< x, (n, in) row-major
  Weight,  ///< W, (out, in) row-major: the Hugging Face layout [out, in]
};

/// One cublasGemmEx call, all but the pointers and the scalars (alpha = 1, beta = 0): cuBLAS
/// computes C = op(A) · op(B), every matrix column-major, C of m rows and n columns, op(A) of m ×
/// k, op(B) of k × n; element (i, j) of a column-major array with leading dimension ld is at i +
/// j·ld. C is always y.
struct GemmPlan {
  Operand a{};                 ///< the array passed as A
  cublasOperation_t transa{};  ///< op(A): CUBLAS_OP_N (A itself) or CUBLAS_OP_T (Aᵀ)
  int lda = 0;                 ///< leading dimension of A as stored
  Operand b{};                 ///< the array passed as B
  cublasOperation_t transb{};  ///< op(B)
  int ldb = 0;                 ///< leading dimension of B as stored
  int m = 0, n = 0, k = 0;     ///< C is m × n, the sum runs over k
  int ldc = 0;                 ///< leading dimension of C (that is, of y)
  cudaDataType_t a_type{}, b_type{}, c_type{};  ///< element types of A, B and C in memory
  cublasComputeType_t compute_type{};           ///< the arithmetic cuBLAS may use
};

/// The plan that makes cuBLAS compute the row-major y (n, out) = x (n, in) · Wᵀ, W (out, in) in
/// the Hugging Face layout, reading every array in place (no copy, no transpose kernel) and
/// accumulating in fp32; `precision` picks the element types and the compute type. Throws
/// lab::Error unless n, in and out are all positive.
GemmPlan plan_linear(int n, int in, int out, Precision precision);

/// y (n, out) = x (n, in) · W (out, in)ᵀ, fp32 arrays, on cuBLAS through plan_linear(); `tf32`
/// picks Precision::TF32 instead of Precision::FP32. y is overwritten: n = 0 or out = 0 does
/// nothing, in = 0 gives zeros. Throws lab::Error when a size is negative.
void linear_fp32(const float* h_x, const float* h_w, float* h_y, int n, int in, int out, bool tf32);

/// The same with x and W in bf16 (their bits) and y in fp32: Precision::BF16.
void linear_bf16(const std::uint16_t* h_x, const std::uint16_t* h_w, float* h_y, int n, int in,
                 int out);

}  // namespace lab07
