#include "common/dtype.hpp"

#include <algorithm>
#include <cctype>

#include "common/error.hpp"

namespace lab {

std::size_t bytes_per_element(DType dtype) {
  switch (dtype) {
    case DType::FP32:
      return 4;
    case DType::FP16:
      return 2;
    case DType::BF16:
      return 2;
    case DType::FP8:
      return 1;
    case DType::INT8:
      return 1;
  }
  throw Error("unknown dtype");
}

std::string to_string(DType dtype) {
  switch (dtype) {
    case DType::FP32:
      return "fp32";
    case DType::FP16:
      return "fp16";
    case DType::BF16:
      return "bf16";
    case DType::FP8:
      return "fp8";
    case DType::INT8:
      return "int8";
  }
  throw Error("unknown dtype");
}

std::vector<std::string> dtype_names() {
  return {"fp32", "fp16", "bf16", "fp8", "int8"};
}

DType parse_dtype(std::string_view text) {
  std::string s(text);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  if (s == "fp32" || s == "f32" || s == "float32" || s == "float") return DType::FP32;
  if (s == "fp16" || s == "f16" || s == "float16" || s == "half") return DType::FP16;
  if (s == "bf16" || s == "bfloat16") return DType::BF16;
  if (s == "fp8" || s == "f8" || s == "e4m3") return DType::FP8;
  if (s == "int8" || s == "i8") return DType::INT8;
  throw Error("unknown dtype '" + std::string(text) + "' (allowed: fp32, fp16, bf16, fp8, int8)");
}

double unit_roundoff(DType dtype) {
  switch (dtype) {
    case DType::FP32:
      return 0x1p-24;  // 23 stored mantissa bits
    case DType::FP16:
      return 0x1p-11;  // 10 stored mantissa bits
    case DType::BF16:
      return 0x1p-8;  // 7 stored mantissa bits
    case DType::FP8:
      return 0x1p-4;  // e4m3: 3 stored mantissa bits
    case DType::INT8:
      return 0x1p-8;  // after per-tensor scaling: 1/2 of one step in 128
  }
  throw Error("unknown dtype");
}

}  // namespace lab
