// Lab 7, student version. Replace each TODO(student) with your code; run
//   ctest --test-dir build -L lab -R Lab07 --output-on-failure
// until every test passes (the plan tests run without a GPU; the others need one).
// exercises/07_cublas/README.md explains each step.
#include <stdexcept>

#include "common/error.hpp"
#include "cuda/buffer.hpp"
#include "cuda/check.cuh"
#include "cuda/resources.hpp"
#include "lab.hpp"

namespace lab07 {

GemmPlan plan_linear(int n, int in, int out, Precision precision) {
  // TODO(student): refuse non-positive sizes (lab::require). Then fill a GemmPlan so that cuBLAS,
  // which reads every array column-major, computes the row-major y (n, out) = x (n, in) · Wᵀ with
  // W stored (out, in): which array is A and which B, op(A) and op(B), m, n, k, the three leading
  // dimensions; then the element types and the compute type for `precision`.
  (void)n, (void)in, (void)out, (void)precision;
  throw std::logic_error("not implemented: lab07::plan_linear");
}

void linear_fp32(const float* h_x, const float* h_w, float* h_y, int n, int in, int out,
                 bool tf32) {
  // TODO(student): validate the sizes (negative: lab::Error; n = 0 or out = 0: return; in = 0: y
  // is all zeros). Plan the call, upload x and W (lab::cuda::DeviceBuffer), create a cuBLAS handle
  // (lab::cuda::CublasHandle), call cublasGemmEx with the plan (alpha = 1, beta = 0, wrapped in
  // LAB_CUBLAS_CHECK), copy y back.
  (void)h_x, (void)h_w, (void)h_y, (void)n, (void)in, (void)out, (void)tf32;
  throw std::logic_error("not implemented: lab07::linear_fp32");
}

void linear_bf16(const std::uint16_t* h_x, const std::uint16_t* h_w, float* h_y, int n, int in,
                 int out) {
  // TODO(student): as linear_fp32, with x and W uploaded as their 16-bit patterns.
  (void)h_x, (void)h_w, (void)h_y, (void)n, (void)in, (void)out;
  throw std::logic_error("not implemented: lab07::linear_bf16");
}

}  // namespace lab07
