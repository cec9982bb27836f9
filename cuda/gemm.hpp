#pragma once
/// \file
/// \brief Linear layers through cuBLAS (chapter 7): fp32, TF32 tensor cores and bf16 tensor cores,
/// always accumulating in fp32.
///
/// cuBLAS is column-major; our activations and HF weights are row-major. A row-major (n, in) array
/// is the column-major (in, n) array of its transpose, so y = x Wᵀ (row-major) is computed as the
/// column-major product yᵀ(out, n) = W(out, in) · xᵀ(in, n), with W read transposed from its
/// column-major view (in, out). No data moves for any of this.

#include <cublas_v2.h>

#include <string>

#include "cuda/kernels.hpp"

namespace lab::cuda {

/// How a linear layer multiplies.
enum class MatmulBackend {
  Naive,       ///< matmul_naive_kernel: one thread per output (chapter 6)
  CublasFP32,  ///< cuBLAS SGEMM-class: fp32 FMA units, no tensor cores
  CublasTF32,  ///< fp32 storage, tensor cores round inputs to TF32 (10-bit mantissa)
  CublasBF16,  ///< bf16 weights and inputs on tensor cores, fp32 accumulation and output
};
std::string to_string(MatmulBackend backend);
/// "naive", "fp32", "tf32", "bf16"; throws lab::Error naming the allowed values.
MatmulBackend parse_matmul_backend(const std::string& text);

/// y(n, out) = x(n, in) · W(out, in)ᵀ (+ y when accumulate), fp32 storage; `tf32` picks the
/// TF32 tensor-core compute type.
void linear_fp32(cublasHandle_t handle, const float* d_w, const float* d_x, float* d_y, int n,
                 int in, int out, bool accumulate, bool tf32);
/// The same with bf16 W and x and fp32 y.
void linear_bf16(cublasHandle_t handle, const bf16* d_w, const bf16* d_x, float* d_y, int n, int in,
                 int out, bool accumulate);

}  // namespace lab::cuda
