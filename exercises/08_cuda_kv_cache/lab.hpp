#pragma once
/// \file
/// \brief Lab 8 interface (frozen): the decode GEMV with bf16 weights and fp32 accumulation (one
/// warp per row, coalesced), and the append to a bf16 KV cache on the device.
///
/// Plain C++ (no CUDA types), so that the GoogleTest file is compiled by the host compiler. bf16
/// values cross this interface as their 16 bits (std::uint16_t); to_bf16() and from_bf16() below
/// convert on the host exactly as __float2bfloat16 and __bfloat162float do on the device. All
/// pointers are host pointers; the implementation allocates, copies, launches and copies back.

#include <cstdint>
#include <cstring>

/// Lab 8: the decode kernels.
namespace lab08 {

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

/// y[r] = Σ_c W[r, c] · x[c], the decode step's matrix-vector product. W (rows, cols) row-major
/// bf16 bits, x (cols) and y (rows) fp32. Each product and the whole sum in fp32; one warp per
/// row, lanes reading neighbouring elements. y is overwritten; rows = 0 does nothing. Throws
/// lab::Error when a size is negative.
void gemv(const std::uint16_t* h_w, const float* h_x, float* h_y, int rows, int cols);

/// Appends n tokens' keys and values (k_new, v_new: (n, kv_dim) fp32) to one layer's cache
/// (k_cache, v_cache: (capacity, kv_dim) bf16 bits), rows [pos, pos + n), rounding to bf16. The
/// position travels to the kernel through device memory, as in chapter 8, where a CUDA graph
/// replays the same launch at every step. Other rows are left as they were. Throws lab::Error
/// when pos < 0, n < 0, kv_dim < 0 or pos + n > capacity.
void kv_append(const float* h_k_new, const float* h_v_new, std::uint16_t* h_k_cache,
               std::uint16_t* h_v_cache, int n, int kv_dim, int pos, int capacity);

}  // namespace lab08
