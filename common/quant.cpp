#include "common/quant.hpp"

#include <bit>
#include <cmath>
#include <cstring>

#include "common/error.hpp"

namespace lab {

static_assert(std::endian::native == std::endian::little,
              "the loaders read little-endian files by memcpy and need a little-endian host");

std::optional<GgmlTypeInfo> ggml_type_info(std::uint32_t code) {
  switch (static_cast<GgmlType>(code)) {
    case GgmlType::F32:
      return GgmlTypeInfo{"F32", 1, 4, true};
    case GgmlType::F16:
      return GgmlTypeInfo{"F16", 1, 2, true};
    case GgmlType::Q4_0:
      return GgmlTypeInfo{"Q4_0", 32, 18, true};
    case GgmlType::Q4_1:
      return GgmlTypeInfo{"Q4_1", 32, 20, true};
    case GgmlType::Q5_0:
      return GgmlTypeInfo{"Q5_0", 32, 22, true};
    case GgmlType::Q5_1:
      return GgmlTypeInfo{"Q5_1", 32, 24, true};
    case GgmlType::Q8_0:
      return GgmlTypeInfo{"Q8_0", 32, 34, true};
    case GgmlType::Q8_1:
      return GgmlTypeInfo{"Q8_1", 32, 36, false};
    case GgmlType::Q2_K:
      return GgmlTypeInfo{"Q2_K", 256, 84, false};
    case GgmlType::Q3_K:
      return GgmlTypeInfo{"Q3_K", 256, 110, false};
    case GgmlType::Q4_K:
      return GgmlTypeInfo{"Q4_K", 256, 144, true};
    case GgmlType::Q5_K:
      return GgmlTypeInfo{"Q5_K", 256, 176, true};
    case GgmlType::Q6_K:
      return GgmlTypeInfo{"Q6_K", 256, 210, true};
    case GgmlType::Q8_K:
      return GgmlTypeInfo{"Q8_K", 256, 292, false};
    case GgmlType::I8:
      return GgmlTypeInfo{"I8", 1, 1, false};
    case GgmlType::I16:
      return GgmlTypeInfo{"I16", 1, 2, false};
    case GgmlType::I32:
      return GgmlTypeInfo{"I32", 1, 4, false};
    case GgmlType::I64:
      return GgmlTypeInfo{"I64", 1, 8, false};
    case GgmlType::F64:
      return GgmlTypeInfo{"F64", 1, 8, false};
    case GgmlType::BF16:
      return GgmlTypeInfo{"BF16", 1, 2, true};
  }
  return std::nullopt;
}

std::string ggml_type_name(std::uint32_t code) {
  const auto info = ggml_type_info(code);
  return info ? info->name : "type " + std::to_string(code);
}

float fp16_to_fp32(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1Fu;
  const std::uint32_t mantissa = h & 0x3FFu;
  if (exponent == 0) {
    // Zero or subnormal: mantissa · 2^-24, exact in fp32.
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  std::uint32_t bits;
  if (exponent == 31)
    bits = sign | 0x7F800000u | (mantissa << 13);  // inf or NaN (payload kept)
  else
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);  // rebias 15 → 127
  return std::bit_cast<float>(bits);
}

std::uint16_t fp32_to_fp16(float value) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
  const std::uint16_t sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
  const float magnitude = std::fabs(value);
  if (std::isnan(value)) return static_cast<std::uint16_t>(sign | 0x7E00u);
  if (magnitude >= 65520.0f) return static_cast<std::uint16_t>(sign | 0x7C00u);  // rounds to inf
  if (magnitude < 0x1p-14f) {
    // Subnormal range: a multiple of 2^-24; nearbyint rounds half to even.
    const auto m = static_cast<std::uint16_t>(std::nearbyint(magnitude * 0x1p24f));
    return static_cast<std::uint16_t>(sign | m);
  }
  // Normal: keep 10 of 23 mantissa bits, round to nearest even on the 13 dropped ones. A carry
  // out of the mantissa correctly bumps the exponent.
  std::uint32_t rebased = (bits & 0x7FFFFFFFu) - (112u << 23);
  const std::uint32_t dropped = rebased & 0x1FFFu;
  rebased >>= 13;
  if (dropped > 0x1000u || (dropped == 0x1000u && (rebased & 1u))) ++rebased;
  return static_cast<std::uint16_t>(sign | rebased);
}

float bf16_to_fp32(std::uint16_t bits) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16);
}

std::uint16_t fp32_to_bf16(float value) {
  std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
  if (std::isnan(value)) return static_cast<std::uint16_t>((bits >> 16) | 0x40u);
  bits += 0x7FFFu + ((bits >> 16) & 1u);  // round to nearest even
  return static_cast<std::uint16_t>(bits >> 16);
}

namespace {

std::uint16_t load_u16(const std::uint8_t* p) {
  std::uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

float load_f16(const std::uint8_t* p) {
  return fp16_to_fp32(load_u16(p));
}

//! [q4_1]
// Q4_1: [d: f16][m: f16][qs: 16 bytes]. Byte i holds element i (low nibble) and element i + 16
// (high nibble); value = q · d + m, with q in 0..15.
void dequantize_block_q4_1(const std::uint8_t* block, float* y) {
  const float d = load_f16(block);
  const float m = load_f16(block + 2);
  const std::uint8_t* qs = block + 4;
  for (int i = 0; i < 16; ++i) {
    y[i] = static_cast<float>(qs[i] & 0x0F) * d + m;
    y[i + 16] = static_cast<float>(qs[i] >> 4) * d + m;
  }
}
//! [q4_1]

void dequantize_block_q4_0(const std::uint8_t* block, float* y) {
  const float d = load_f16(block);
  const std::uint8_t* qs = block + 2;
  for (int i = 0; i < 16; ++i) {
    y[i] = static_cast<float>((qs[i] & 0x0F) - 8) * d;
    y[i + 16] = static_cast<float>((qs[i] >> 4) - 8) * d;
  }
}

// Q5_0/Q5_1: the fifth bit of element j is bit j of the 32-bit qh.
void dequantize_block_q5(const std::uint8_t* block, float* y, bool has_min) {
  const float d = load_f16(block);
  const float m = has_min ? load_f16(block + 2) : 0.0f;
  const std::uint8_t* p = block + (has_min ? 4 : 2);
  std::uint32_t qh;
  std::memcpy(&qh, p, 4);
  const std::uint8_t* qs = p + 4;
  const int offset = has_min ? 0 : 16;  // Q5_0 is symmetric around 16
  for (int i = 0; i < 16; ++i) {
    const int lo = (qs[i] & 0x0F) | static_cast<int>(((qh >> i) & 1u) << 4);
    const int hi = (qs[i] >> 4) | static_cast<int>(((qh >> (i + 16)) & 1u) << 4);
    y[i] = static_cast<float>(lo - offset) * d + m;
    y[i + 16] = static_cast<float>(hi - offset) * d + m;
  }
}

void dequantize_block_q8_0(const std::uint8_t* block, float* y) {
  const float d = load_f16(block);
  for (int i = 0; i < 32; ++i)
    y[i] = static_cast<float>(static_cast<std::int8_t>(block[2 + i])) * d;
}

// The 12 bytes of 6-bit (scale, min) pairs shared by Q4_K and Q5_K (ggml's get_scale_min_k4).
void scale_min_k4(int s, const std::uint8_t* q, int& sc, int& mn) {
  if (s < 4) {
    sc = q[s] & 63;
    mn = q[s + 4] & 63;
  } else {
    sc = (q[s + 4] & 0x0F) | ((q[s - 4] >> 6) << 4);
    mn = (q[s + 4] >> 4) | ((q[s] >> 6) << 4);
  }
}

//! [q4_k]
// Q4_K super-block of 256: [d: f16][dmin: f16][12 bytes of 6-bit scales/mins][128 bytes of
// nibbles]. Eight sub-blocks of 32 each get their own scale d·sc and offset dmin·mn; chunk c of 64
// elements uses the low nibbles of 32 bytes for its first half and the high nibbles for its second.
void dequantize_block_q4_k(const std::uint8_t* block, float* y) {
  const float d = load_f16(block);
  const float dmin = load_f16(block + 2);
  const std::uint8_t* scales = block + 4;
  const std::uint8_t* qs = block + 16;
  for (int c = 0; c < 4; ++c) {
    int sc0, mn0, sc1, mn1;
    scale_min_k4(2 * c, scales, sc0, mn0);
    scale_min_k4(2 * c + 1, scales, sc1, mn1);
    const float d0 = d * static_cast<float>(sc0), m0 = dmin * static_cast<float>(mn0);
    const float d1 = d * static_cast<float>(sc1), m1 = dmin * static_cast<float>(mn1);
    const std::uint8_t* q = qs + 32 * c;
    for (int l = 0; l < 32; ++l) {
      y[64 * c + l] = d0 * static_cast<float>(q[l] & 0x0F) - m0;
      y[64 * c + 32 + l] = d1 * static_cast<float>(q[l] >> 4) - m1;
    }
  }
}
//! [q4_k]

// Q5_K: Q4_K plus 32 bytes of high bits; chunk c takes bit 2c (first half) and bit 2c+1 (second).
void dequantize_block_q5_k(const std::uint8_t* block, float* y) {
  const float d = load_f16(block);
  const float dmin = load_f16(block + 2);
  const std::uint8_t* scales = block + 4;
  const std::uint8_t* qh = block + 16;
  const std::uint8_t* qs = block + 48;
  for (int c = 0; c < 4; ++c) {
    int sc0, mn0, sc1, mn1;
    scale_min_k4(2 * c, scales, sc0, mn0);
    scale_min_k4(2 * c + 1, scales, sc1, mn1);
    const float d0 = d * static_cast<float>(sc0), m0 = dmin * static_cast<float>(mn0);
    const float d1 = d * static_cast<float>(sc1), m1 = dmin * static_cast<float>(mn1);
    const std::uint8_t* q = qs + 32 * c;
    for (int l = 0; l < 32; ++l) {
      const int lo = (q[l] & 0x0F) + (((qh[l] >> (2 * c)) & 1) << 4);
      const int hi = (q[l] >> 4) + (((qh[l] >> (2 * c + 1)) & 1) << 4);
      y[64 * c + l] = d0 * static_cast<float>(lo) - m0;
      y[64 * c + 32 + l] = d1 * static_cast<float>(hi) - m1;
    }
  }
}

// Q6_K super-block of 256: [ql: 128][qh: 64][scales: 16 × int8][d: f16] (d last). Each value
// is 4 low bits from ql and 2 high bits from qh, minus 32, times d and its 16-element scale.
void dequantize_block_q6_k(const std::uint8_t* block, float* y) {
  const float d = load_f16(block + 208);
  for (int h = 0; h < 2; ++h) {
    const std::uint8_t* ql = block + 64 * h;
    const std::uint8_t* qh = block + 128 + 32 * h;
    const auto* sc = reinterpret_cast<const std::int8_t*>(block + 192 + 8 * h);
    float* out = y + 128 * h;
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      out[l] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
      out[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      out[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      out[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
  }
}

}  // namespace

void dequantize_row(GgmlType type, std::span<const std::uint8_t> row, std::span<float> out) {
  const auto info = ggml_type_info(static_cast<std::uint32_t>(type));
  if (!info || !info->can_dequantize)
    throw Error("cannot dequantize ggml " + ggml_type_name(static_cast<std::uint32_t>(type)) +
                " (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)");
  const std::size_t n = out.size();
  if (n % info->block_size != 0)
    throw Error("a " + std::string(info->name) + " row of " + std::to_string(n) +
                " elements is not a whole number of " + std::to_string(info->block_size) +
                "-element blocks");
  const std::size_t blocks = n / info->block_size;
  if (row.size() != blocks * info->block_bytes)
    throw Error("a " + std::string(info->name) + " row of " + std::to_string(n) +
                " elements needs " + std::to_string(blocks * info->block_bytes) + " bytes, got " +
                std::to_string(row.size()));
  const std::uint8_t* src = row.data();
  float* y = out.data();
  for (std::size_t b = 0; b < blocks; ++b, src += info->block_bytes, y += info->block_size) {
    switch (type) {
      case GgmlType::F32:
        std::memcpy(y, src, 4);
        break;
      case GgmlType::F16:
        *y = load_f16(src);
        break;
      case GgmlType::BF16:
        *y = bf16_to_fp32(load_u16(src));
        break;
      case GgmlType::Q8_0:
        dequantize_block_q8_0(src, y);
        break;
      case GgmlType::Q4_0:
        dequantize_block_q4_0(src, y);
        break;
      case GgmlType::Q4_1:
        dequantize_block_q4_1(src, y);
        break;
      case GgmlType::Q5_0:
        dequantize_block_q5(src, y, false);
        break;
      case GgmlType::Q5_1:
        dequantize_block_q5(src, y, true);
        break;
      case GgmlType::Q4_K:
        dequantize_block_q4_k(src, y);
        break;
      case GgmlType::Q5_K:
        dequantize_block_q5_k(src, y);
        break;
      case GgmlType::Q6_K:
        dequantize_block_q6_k(src, y);
        break;
      default:
        throw Error("unreachable: dequantize_row type check");
    }
  }
}

}  // namespace lab
