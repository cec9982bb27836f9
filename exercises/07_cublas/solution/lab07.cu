// Lab 7, solution. The same call as chapter 7's linear_fp32 / linear_bf16 (cuda/gemm.cu), with the
// mapping spelled out as data (GemmPlan) so that it can be checked before anything runs.
#include <algorithm>
#include <cstddef>
#include <span>
#include <string>

#include "common/error.hpp"
#include "cuda/buffer.hpp"
#include "cuda/check.cuh"
#include "cuda/resources.hpp"
#include "lab.hpp"

namespace lab07 {

namespace {

void require_sizes(const char* who, int n, int in, int out) {
  lab::require(n >= 0 && in >= 0 && out >= 0,
               std::string(who) + ": negative size n=" + std::to_string(n) +
                   " in=" + std::to_string(in) + " out=" + std::to_string(out));
}

// Runs one planned GEMM on device arrays (d_x and d_w of the plan's element types), y = x Wᵀ.
void run_plan(const GemmPlan& plan, const void* d_x, const void* d_w, float* d_y) {
  lab::cuda::CublasHandle handle(nullptr);  // the legacy default stream: ordered with cudaMemcpy
  const float alpha = 1.0f, beta = 0.0f;    // float scalars: the compute type is 32F
  const void* d_a = plan.a == Operand::Weight ? d_w : d_x;
  const void* d_b = plan.b == Operand::Weight ? d_w : d_x;
  LAB_CUBLAS_CHECK(cublasGemmEx(handle.get(), plan.transa, plan.transb, plan.m, plan.n, plan.k,
                                &alpha, d_a, plan.a_type, plan.lda, d_b, plan.b_type, plan.ldb,
                                &beta, d_y, plan.c_type, plan.ldc, plan.compute_type,
                                CUBLAS_GEMM_DEFAULT));
}

}  // namespace

GemmPlan plan_linear(int n, int in, int out, Precision precision) {
  lab::require(n > 0 && in > 0 && out > 0,
               "lab07::plan_linear: sizes must be positive, got n=" + std::to_string(n) +
                   " in=" + std::to_string(in) + " out=" + std::to_string(out));
  GemmPlan plan;
  // cuBLAS reads a row-major (r, c) array as the column-major (c, r) array: its transpose, in
  // place. So the row-major y (n, out) we want is, to cuBLAS, C = yᵀ (out × n), ldc = out, and
  // yᵀ = (x Wᵀ)ᵀ = W xᵀ: A must be W (out × in) and B must be xᵀ (in × n).
  plan.m = out;
  plan.n = n;
  plan.k = in;
  plan.ldc = out;
  // W row-major (out, in) is, column-major, Wᵀ (in × out) with ld = in: transpose it back.
  plan.a = Operand::Weight;
  plan.transa = CUBLAS_OP_T;
  plan.lda = in;
  // x row-major (n, in) is, column-major, xᵀ (in × n) with ld = in: already what B must be.
  plan.b = Operand::Input;
  plan.transb = CUBLAS_OP_N;
  plan.ldb = in;
  // Storage and arithmetic. TF32 is a compute type, not a storage type: the arrays stay fp32 and
  // the tensor cores round each input to 10 mantissa bits. bf16 storage still accumulates in fp32.
  const bool bf16 = precision == Precision::BF16;
  plan.a_type = plan.b_type = bf16 ? CUDA_R_16BF : CUDA_R_32F;
  plan.c_type = CUDA_R_32F;
  plan.compute_type =
      precision == Precision::TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  return plan;
}

void linear_fp32(const float* h_x, const float* h_w, float* h_y, int n, int in, int out,
                 bool tf32) {
  require_sizes("lab07::linear_fp32", n, in, out);
  const auto rows = static_cast<std::size_t>(n), k = static_cast<std::size_t>(in),
             cols = static_cast<std::size_t>(out);
  if (rows == 0 || cols == 0) return;
  if (k == 0) {  // empty sums; cuBLAS would refuse lda = 0
    std::fill(h_y, h_y + rows * cols, 0.0f);
    return;
  }
  const GemmPlan plan = plan_linear(n, in, out, tf32 ? Precision::TF32 : Precision::FP32);
  lab::cuda::DeviceBuffer<float> d_x(std::span<const float>(h_x, rows * k));
  lab::cuda::DeviceBuffer<float> d_w(std::span<const float>(h_w, cols * k));
  lab::cuda::DeviceBuffer<float> d_y(rows * cols);
  run_plan(plan, d_x.get(), d_w.get(), d_y.get());
  LAB_CUDA_CHECK(cudaMemcpy(h_y, d_y.get(), d_y.bytes(), cudaMemcpyDeviceToHost));
}

void linear_bf16(const std::uint16_t* h_x, const std::uint16_t* h_w, float* h_y, int n, int in,
                 int out) {
  require_sizes("lab07::linear_bf16", n, in, out);
  const auto rows = static_cast<std::size_t>(n), k = static_cast<std::size_t>(in),
             cols = static_cast<std::size_t>(out);
  if (rows == 0 || cols == 0) return;
  if (k == 0) {
    std::fill(h_y, h_y + rows * cols, 0.0f);
    return;
  }
  const GemmPlan plan = plan_linear(n, in, out, Precision::BF16);
  // The 16 bits travel as they are; CUDA_R_16BF in the plan tells cuBLAS what they mean.
  lab::cuda::DeviceBuffer<std::uint16_t> d_x(std::span<const std::uint16_t>(h_x, rows * k));
  lab::cuda::DeviceBuffer<std::uint16_t> d_w(std::span<const std::uint16_t>(h_w, cols * k));
  lab::cuda::DeviceBuffer<float> d_y(rows * cols);
  run_plan(plan, d_x.get(), d_w.get(), d_y.get());
  LAB_CUDA_CHECK(cudaMemcpy(h_y, d_y.get(), d_y.bytes(), cudaMemcpyDeviceToHost));
}

}  // namespace lab07
