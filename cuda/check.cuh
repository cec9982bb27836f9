#pragma once
/// \file
/// \brief Every CUDA and cuBLAS call is checked: errors become lab::Error with file:line.

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

#include "common/error.hpp"

namespace lab::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t status, const char* expression, const char* file,
                                   int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* expression,
                                     const char* file, int line);

}  // namespace lab::cuda

/// Checks a CUDA runtime call.
#define LAB_CUDA_CHECK(expr)                                                 \
  do {                                                                       \
    const cudaError_t lab_status_ = (expr);                                  \
    if (lab_status_ != cudaSuccess)                                          \
      ::lab::cuda::throw_cuda_error(lab_status_, #expr, __FILE__, __LINE__); \
  } while (0)

/// Checks the launch just made (configuration errors) without synchronising.
#define LAB_CUDA_CHECK_LAUNCH() LAB_CUDA_CHECK(cudaGetLastError())

/// Checks a cuBLAS call.
#define LAB_CUBLAS_CHECK(expr)                                                 \
  do {                                                                         \
    const cublasStatus_t lab_status_ = (expr);                                 \
    if (lab_status_ != CUBLAS_STATUS_SUCCESS)                                  \
      ::lab::cuda::throw_cublas_error(lab_status_, #expr, __FILE__, __LINE__); \
  } while (0)
