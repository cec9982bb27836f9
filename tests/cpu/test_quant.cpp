// Dequantization of every GGUF block type against an independent, element-by-element
// reimplementation written from reference/model_formats.md §2, plus hand-made blocks whose values
// are worked out by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "common/error.hpp"
#include "common/quant.hpp"
#include "common/random.hpp"

namespace {

using lab::GgmlType;

// fp16 by the textbook formula, in double: (-1)^s · 2^(e-15) · (1 + m/1024), or m · 2^-24.
double ref_f16(std::uint16_t h) {
  const int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  double v;
  if (e == 0)
    v = std::ldexp(m, -24);
  else if (e == 31)
    v = m ? NAN : INFINITY;
  else
    v = std::ldexp(1.0 + m / 1024.0, e - 15);
  return s ? -v : v;
}

std::uint16_t u16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}

// Element j of one block, straight from the format tables (no loops shared with the library).
double ref_element(GgmlType t, const std::uint8_t* b, int j) {
  switch (t) {
    case GgmlType::Q8_0:
      return static_cast<std::int8_t>(b[2 + j]) * ref_f16(u16(b));
    case GgmlType::Q4_0: {
      const int q = j < 16 ? (b[2 + j] & 0xF) : (b[2 + j - 16] >> 4);
      return (q - 8) * ref_f16(u16(b));
    }
    case GgmlType::Q4_1: {
      const int q = j < 16 ? (b[4 + j] & 0xF) : (b[4 + j - 16] >> 4);
      return q * ref_f16(u16(b)) + ref_f16(u16(b + 2));
    }
    case GgmlType::Q5_0:
    case GgmlType::Q5_1: {
      const bool one = t == GgmlType::Q5_1;
      const std::uint8_t* qh = b + (one ? 4 : 2);
      const std::uint32_t H = qh[0] | (qh[1] << 8) | (qh[2] << 16) | (std::uint32_t(qh[3]) << 24);
      const std::uint8_t* qs = qh + 4;
      const int q = j < 16 ? ((qs[j] & 0xF) | (((H >> j) & 1) << 4))
                           : ((qs[j - 16] >> 4) | (((H >> j) & 1) << 4));
      return one ? q * ref_f16(u16(b)) + ref_f16(u16(b + 2)) : (q - 16) * ref_f16(u16(b));
    }
    case GgmlType::Q4_K:
    case GgmlType::Q5_K: {
      const std::uint8_t* sc = b + 4;
      const int s = j / 32;  // sub-block
      int scale, min;
      if (s < 4) {
        scale = sc[s] & 63;
        min = sc[s + 4] & 63;
      } else {
        scale = (sc[s + 4] & 0xF) | ((sc[s - 4] >> 6) << 4);
        min = (sc[s + 4] >> 4) | ((sc[s] >> 6) << 4);
      }
      const int c = j / 64, l = j % 32;
      const bool high = (j % 64) >= 32;
      const std::uint8_t* qs = b + (t == GgmlType::Q4_K ? 16 : 48);
      int q = high ? (qs[32 * c + l] >> 4) : (qs[32 * c + l] & 0xF);
      if (t == GgmlType::Q5_K) q += ((b[16 + l] >> (2 * c + (high ? 1 : 0))) & 1) * 16;
      return ref_f16(u16(b)) * scale * q - ref_f16(u16(b + 2)) * min;
    }
    case GgmlType::Q6_K: {
      const int h = j / 128, r = j % 128, quarter = r / 32, l = r % 32;
      const std::uint8_t* ql = b + 64 * h;
      const std::uint8_t* qh = b + 128 + 32 * h;
      const auto* sc = reinterpret_cast<const std::int8_t*>(b + 192 + 8 * h);
      const int low = quarter == 0   ? ql[l] & 0xF
                      : quarter == 1 ? ql[l + 32] & 0xF
                      : quarter == 2 ? ql[l] >> 4
                                     : ql[l + 32] >> 4;
      const int q = (low | (((qh[l] >> (2 * quarter)) & 3) << 4)) - 32;
      return ref_f16(u16(b + 208)) * sc[l / 16 + 2 * quarter] * q;
    }
    default:
      return NAN;
  }
}

// Random bytes, except the fp16 scales, which are kept finite and modest.
std::vector<std::uint8_t> random_blocks(GgmlType t, int blocks, lab::Rng& rng) {
  const auto info = *lab::ggml_type_info(static_cast<std::uint32_t>(t));
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(blocks) * info.block_bytes);
  for (auto& b : bytes) b = static_cast<std::uint8_t>(rng.below(256));
  for (int k = 0; k < blocks; ++k) {
    std::uint8_t* b = bytes.data() + static_cast<std::size_t>(k) * info.block_bytes;
    auto put = [&](std::size_t at) {
      const std::uint16_t h = lab::fp32_to_fp16(static_cast<float>(rng.uniform(-0.1, 0.1)));
      std::memcpy(b + at, &h, 2);
    };
    if (t == GgmlType::Q6_K) {
      put(208);
    } else {
      put(0);
      if (t == GgmlType::Q4_1 || t == GgmlType::Q5_1 || t == GgmlType::Q4_K || t == GgmlType::Q5_K)
        put(2);
    }
  }
  return bytes;
}

class QuantTypes : public ::testing::TestWithParam<GgmlType> {};

TEST_P(QuantTypes, MatchesTheFormatTablesElementByElement) {
  const GgmlType t = GetParam();
  const auto info = *lab::ggml_type_info(static_cast<std::uint32_t>(t));
  lab::Rng rng(42 + static_cast<int>(t));
  const int blocks = 3;
  const auto bytes = random_blocks(t, blocks, rng);
  std::vector<float> out(static_cast<std::size_t>(blocks) * info.block_size);
  lab::dequantize_row(t, bytes, out);
  for (int k = 0; k < blocks; ++k)
    for (std::uint32_t j = 0; j < info.block_size; ++j) {
      const double want = ref_element(t, bytes.data() + k * info.block_bytes, static_cast<int>(j));
      const float got = out[k * info.block_size + j];
      // One fp32 rounding of a product/sum of fp16 values: a few ulps at most.
      EXPECT_NEAR(got, want, 1e-6 * (1.0 + std::fabs(want)))
          << info.name << " block " << k << " element " << j;
    }
}

INSTANTIATE_TEST_SUITE_P(AllBlockTypes, QuantTypes,
                         ::testing::Values(GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1,
                                           GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q4_K,
                                           GgmlType::Q5_K, GgmlType::Q6_K),
                         [](const auto& p) {
                           return std::string(
                               lab::ggml_type_info(static_cast<std::uint32_t>(p.param))->name);
                         });

// Hand-made blocks: values worked out on paper.
TEST(Quant, HandMadeQ8_0) {
  std::vector<std::uint8_t> b(34, 0);
  b[0] = 0x00, b[1] = 0x38;  // d = 0.5
  b[2] = static_cast<std::uint8_t>(-3), b[3] = 4, b[33] = 127;
  std::vector<float> y(32);
  lab::dequantize_row(GgmlType::Q8_0, b, y);
  EXPECT_EQ(y[0], -1.5f);
  EXPECT_EQ(y[1], 2.0f);
  EXPECT_EQ(y[2], 0.0f);
  EXPECT_EQ(y[31], 63.5f);
}

TEST(Quant, HandMadeQ4_0AndQ4_1NibbleOrder) {
  // Byte i holds element i (low nibble) and element i + 16 (high nibble), not 2i and 2i + 1.
  std::vector<std::uint8_t> q40(18, 0x88);  // every nibble 8 → 0
  q40[0] = 0x00, q40[1] = 0x40;             // d = 2
  q40[2] = 0x80;                            // element 0: 0 - 8; element 16: 8 - 8
  q40[3] = 0xF8;                            // element 1: 0; element 17: (15 - 8) · 2
  std::vector<float> y(32);
  lab::dequantize_row(GgmlType::Q4_0, q40, y);
  EXPECT_EQ(y[0], -16.0f);
  EXPECT_EQ(y[16], 0.0f);
  EXPECT_EQ(y[1], 0.0f);
  EXPECT_EQ(y[17], 14.0f);

  std::vector<std::uint8_t> q41(20, 0);
  q41[0] = 0x00, q41[1] = 0x3C;  // d = 1
  q41[2] = 0x00, q41[3] = 0xC8;  // m = -8
  q41[4] = 0x1F;                 // element 0: 15; element 16: 1
  lab::dequantize_row(GgmlType::Q4_1, q41, y);
  EXPECT_EQ(y[0], 7.0f);
  EXPECT_EQ(y[16], -7.0f);
  EXPECT_EQ(y[5], -8.0f);
}

TEST(Quant, HandMadeQ5_0HighBits) {
  std::vector<std::uint8_t> b(22, 0);
  b[1] = 0x3C;  // d = 1
  b[2] = 0x01;  // qh bit 0: element 0 gets 16
  b[5] = 0x80;  // qh bit 31: element 31 gets 16
  std::vector<float> y(32);
  lab::dequantize_row(GgmlType::Q5_0, b, y);
  EXPECT_EQ(y[0], 0.0f);    // 16 - 16
  EXPECT_EQ(y[1], -16.0f);  // 0 - 16
  EXPECT_EQ(y[31], 0.0f);
}

TEST(Quant, HandMadeQ4_KAndQ6_K) {
  std::vector<std::uint8_t> k4(144, 0);
  k4[1] = 0x3C, k4[3] = 0x3C;  // d = dmin = 1
  k4[4] = 3;                   // sub-block 0 scale 3
  k4[8] = 5;                   // sub-block 0 min 5
  k4[16] = 0x0A;               // element 0: 10
  std::vector<float> y(256);
  lab::dequantize_row(GgmlType::Q4_K, k4, y);
  EXPECT_EQ(y[0], 25.0f);  // 3 · 10 − 5
  EXPECT_EQ(y[1], -5.0f);

  std::vector<std::uint8_t> k6(210, 0);
  k6[209] = 0x3C;  // d = 1, stored last
  k6[192] = 2;     // scale of elements 0..15
  k6[0] = 0x0F;    // low 4 bits of element 0
  k6[128] = 0x03;  // high 2 bits of element 0
  lab::dequantize_row(GgmlType::Q6_K, k6, y);
  EXPECT_EQ(y[0], 62.0f);   // 2 · (63 − 32)
  EXPECT_EQ(y[1], -64.0f);  // 2 · (0 − 32)
}

TEST(Quant, Fp16AllBitPatterns) {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const double want = ref_f16(static_cast<std::uint16_t>(h));
    const float got = lab::fp16_to_fp32(static_cast<std::uint16_t>(h));
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got)) << h;
      continue;
    }
    ASSERT_EQ(static_cast<double>(got), want) << "bits " << h;
    // fp16 → fp32 → fp16 is the identity for every non-NaN value.
    ASSERT_EQ(lab::fp32_to_fp16(got), h) << "bits " << h;
  }
}

TEST(Quant, Fp16RoundsToNearestEven) {
  EXPECT_EQ(lab::fp32_to_fp16(1.0f + 0x1p-11f), 0x3C00);  // halfway: to even (1.0)
  EXPECT_EQ(lab::fp32_to_fp16(1.0f + 3 * 0x1p-11f), 0x3C02);
  EXPECT_EQ(lab::fp32_to_fp16(65520.0f), 0x7C00);   // rounds to +inf
  EXPECT_EQ(lab::fp32_to_fp16(-0x1p-25f), 0x8000);  // halfway to the smallest subnormal: -0
}

TEST(Quant, Bf16) {
  EXPECT_EQ(lab::bf16_to_fp32(0x3F80), 1.0f);
  EXPECT_EQ(lab::bf16_to_fp32(0xC040), -3.0f);
  EXPECT_EQ(lab::fp32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(lab::fp32_to_bf16(1.0f + 0x1p-8f), 0x3F80);  // halfway: to even
  EXPECT_EQ(lab::fp32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3F82);
  std::vector<std::uint8_t> row = {0x80, 0x3F, 0x40, 0xC0};
  std::vector<float> y(2);
  lab::dequantize_row(GgmlType::BF16, row, y);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], -3.0f);
}

TEST(Quant, RejectsBadRows) {
  std::vector<float> y(32);
  std::vector<std::uint8_t> short_row(10);
  EXPECT_THROW(
      {
        try {
          lab::dequantize_row(GgmlType::Q4_1, short_row, y);
        } catch (const lab::Error& e) {
          EXPECT_NE(std::string(e.what()).find("needs 20 bytes"), std::string::npos) << e.what();
          throw;
        }
      },
      lab::Error);
  std::vector<float> odd(33), k(256);
  EXPECT_THROW(lab::dequantize_row(GgmlType::Q8_0, std::vector<std::uint8_t>(34), odd), lab::Error);
  EXPECT_THROW(lab::dequantize_row(GgmlType::Q2_K, std::vector<std::uint8_t>(84), k), lab::Error);
  EXPECT_FALSE(lab::ggml_type_info(4).has_value());  // a removed code
  EXPECT_EQ(lab::ggml_type_name(99), "type 99");
}

}  // namespace
