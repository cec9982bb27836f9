#pragma once
/// \file
/// \brief ggml tensor types and their dequantization to fp32 (GGUF block formats).
///
/// A quantized row of n elements is n / block_size consecutive blocks; each block packs
/// block_size values as small integers plus one or two fp16 scales. Dequantizing multiplies them
/// back out. The layouts follow ggml's `ggml-common.h` (reference/model_formats.md §2).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace lab {

/// ggml_type codes as stored in a GGUF tensor-info record.
enum class GgmlType : std::uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
};

/// Elements per block and bytes per block of one ggml type.
struct GgmlTypeInfo {
  const char* name;
  std::uint32_t block_size;
  std::uint32_t block_bytes;
  bool can_dequantize;  ///< dequantize_row() supports it
};

/// Size facts for a type code; std::nullopt for a code this project does not know (the IQ types,
/// removed codes, codes past the end).
std::optional<GgmlTypeInfo> ggml_type_info(std::uint32_t code);

/// "Q4_1", or "type 4" for unknown codes.
std::string ggml_type_name(std::uint32_t code);

/// IEEE binary16 bits → float, with subnormals, infinities and NaN.
float fp16_to_fp32(std::uint16_t bits);
/// float → IEEE binary16 bits, rounding to nearest even (overflow gives ±inf).
std::uint16_t fp32_to_fp16(float value);
/// bfloat16 bits → float: the bits are the top half of an fp32.
float bf16_to_fp32(std::uint16_t bits);
/// float → bfloat16 bits, rounding to nearest even (NaN stays NaN).
std::uint16_t fp32_to_bf16(float value);

/// Dequantizes one row of `out.size()` elements of type `type` from `row` (exactly
/// out.size() / block_size blocks). Throws lab::Error for a type it cannot dequantize, a length
/// that is not a whole number of blocks, or a `row` of the wrong size.
void dequantize_row(GgmlType type, std::span<const std::uint8_t> row, std::span<float> out);

}  // namespace lab
