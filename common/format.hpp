#pragma once
/// \file
/// \brief Small formatting helpers for the chapters' printed tables.

#include <cstdint>
#include <string>

namespace lab {

/// 90177536 -> "90,177,536".
std::string with_commas(std::int64_t value);
/// Binary units: 524288 -> "512.0 KiB", 23040 -> "22.5 KiB".
std::string format_bytes(double bytes);
/// Decimal SI prefixes: 9.02e7 -> "90.18 M", 1.5e12 -> "1.50 T".
std::string format_si(double value);

}  // namespace lab
