#include "common/error.hpp"
#include "cuda/check.cuh"
#include "cuda/gemm.hpp"
#include "cuda/resources.hpp"

namespace lab::cuda {

std::string to_string(MatmulBackend backend) {
  switch (backend) {
    case MatmulBackend::Naive:
      return "naive";
    case MatmulBackend::CublasFP32:
      return "fp32";
    case MatmulBackend::CublasTF32:
      return "tf32";
    case MatmulBackend::CublasBF16:
      return "bf16";
  }
  return "?";
}

MatmulBackend parse_matmul_backend(const std::string& text) {
  if (text == "naive") return MatmulBackend::Naive;
  if (text == "fp32") return MatmulBackend::CublasFP32;
  if (text == "tf32") return MatmulBackend::CublasTF32;
  if (text == "bf16") return MatmulBackend::CublasBF16;
  throw Error("'" + text + "' is not a matmul backend (allowed: naive, fp32, tf32, bf16)");
}

namespace {
// y (n × out floats) was written by cuBLAS: say so to compute-sanitizer (see mark_initialized).
void mark_gemm_output(cublasHandle_t handle, const float* d_y, int n, int out) {
  cudaStream_t stream = nullptr;
  LAB_CUBLAS_CHECK(cublasGetStream(handle, &stream));
  mark_initialized(d_y, sizeof(float) * static_cast<std::size_t>(n) * out, stream);
}
}  // namespace

//! [linear_cublas]
void linear_fp32(cublasHandle_t handle, const float* d_w, const float* d_x, float* d_y, int n,
                 int in, int out, bool accumulate, bool tf32) {
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  // Column-major: yᵀ(out × n) = op(W)(out × in) · xᵀ(in × n), W stored as (in × out), ld = in.
  LAB_CUBLAS_CHECK(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &alpha, d_w,
                                CUDA_R_32F, in, d_x, CUDA_R_32F, in, &beta, d_y, CUDA_R_32F, out,
                                tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F,
                                CUBLAS_GEMM_DEFAULT));
  mark_gemm_output(handle, d_y, n, out);
}

void linear_bf16(cublasHandle_t handle, const bf16* d_w, const bf16* d_x, float* d_y, int n, int in,
                 int out, bool accumulate) {
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  LAB_CUBLAS_CHECK(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &alpha, d_w,
                                CUDA_R_16BF, in, d_x, CUDA_R_16BF, in, &beta, d_y, CUDA_R_32F, out,
                                CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  mark_gemm_output(handle, d_y, n, out);
}
//! [linear_cublas]

}  // namespace lab::cuda
