#pragma once
/// \file
/// \brief Lab 6 interface (frozen): the naive CUDA matmul, one thread per output.
///
/// Plain C++ (no CUDA types), so that the GoogleTest file is compiled by the host compiler. All
/// pointers are host pointers; the implementation allocates device memory, copies, launches and
/// copies back.

/// Lab 6: the first CUDA kernel.
namespace lab06 {

/// y = x Wᵀ in fp32, the linear layer of every chapter: x (M, K), W (N, K) in the Hugging Face
/// layout [out, in], y (M, N), all row-major host arrays. y[i, o] = Σ_c x[i, c] · W[o, c], one GPU
/// thread per output (i, o); y is overwritten. M = 0 or N = 0 does nothing. Throws lab::Error
/// when a size is negative or M exceeds 65535 (the grid's y dimension).
void matmul(const float* h_x, const float* h_w, float* h_y, int M, int K, int N);

}  // namespace lab06
