#pragma once
/// \file
/// \brief Hugging Face safetensors: a validating, memory-mapped reader and a writer.
///
/// Layout (reference/model_formats.md §6): a u64 header length N, N bytes of JSON
/// (`name → {dtype, shape, data_offsets}` plus an optional `__metadata__`), then the data buffer;
/// offsets are relative to byte 8 + N.

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/dtype.hpp"
#include "common/mapped_file.hpp"
#include "common/weights.hpp"

namespace lab {

/// One tensor entry, validated: known dtype, shape that matches its byte range.
struct SafetensorsTensor {
  std::string name;
  std::string dtype;  ///< "F32", "F16", "BF16", ...
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0;  ///< inside the data buffer
  std::uint64_t end = 0;
};

/// A parsed safetensors file; the data stay in the memory map until converted.
class SafetensorsFile {
 public:
  /// Maps and validates `path`; throws lab::Error "safetensors '<path>': <problem>".
  explicit SafetensorsFile(const std::string& path);
  /// Validates a file held in memory (tests and fuzzers).
  static SafetensorsFile from_bytes(std::vector<std::uint8_t> bytes, std::string name = "<memory>");
  SafetensorsFile(SafetensorsFile&&) noexcept = default;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept = default;

  const std::string& name() const { return name_; }
  /// Entries sorted by offset.
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* find(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  std::span<const std::uint8_t> bytes(const SafetensorsTensor& t) const;
  /// The tensor converted to fp32 (F32, F16 and BF16 are supported).
  Tensor to_tensor(const SafetensorsTensor& t) const;

 private:
  SafetensorsFile() = default;
  void parse();
  [[noreturn]] void fail(const std::string& problem) const;

  std::string name_;
  std::optional<MappedFile> mapped_;
  std::vector<std::uint8_t> owned_;
  std::span<const std::uint8_t> bytes_;
  std::uint64_t data_start_ = 0;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, std::size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

/// Serializes `tensors` (name → fp32 tensor) stored as `dtype` (FP32, FP16 or BF16), in the
/// given order, with `metadata` (HF transformers wants {"format": "pt"}).
std::vector<std::uint8_t> serialize_safetensors(
    const std::vector<std::pair<std::string, const Tensor*>>& tensors, DType dtype,
    const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

/// serialize_safetensors() written to `path`.
void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, const Tensor*>>& tensors,
                       DType dtype,
                       const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace lab
