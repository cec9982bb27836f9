#pragma once
/// \file
/// \brief Storage data types and their sizes.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace lab {

/// How numbers are stored in memory (weights, activations, KV cache). Arithmetic may be wider:
/// the fast GPU paths store bf16 and accumulate in fp32.
enum class DType { FP32, FP16, BF16, FP8, INT8 };

/// Bytes one element occupies.
std::size_t bytes_per_element(DType dtype);
/// "fp32", "fp16", ...
std::string to_string(DType dtype);
/// Parses "fp32", "f32", "float32", "fp16", "f16", "half", "bf16", "fp8", "int8"; throws lab::Error
/// naming the allowed values otherwise.
DType parse_dtype(std::string_view text);
/// Canonical names, for help texts and validators.
std::vector<std::string> dtype_names();

/// Unit roundoff u = 2^-(mantissa bits + 1): the relative error of one rounding to this type.
double unit_roundoff(DType dtype);

}  // namespace lab
