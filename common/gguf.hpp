#pragma once
/// \file
/// \brief GGUF (llama.cpp's model file): a validating, memory-mapped reader and a small writer.
///
/// Layout (reference/model_formats.md §1): "GGUF", version, tensor count, key/value count, the
/// key/value records, the tensor-info records, padding to the alignment, then the tensor data.
/// The reader checks every length, count, type code, dimension and offset against the file size
/// before it touches the bytes, so a truncated or hostile file gives a lab::Error naming the
/// problem instead of a crash.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/mapped_file.hpp"
#include "common/quant.hpp"

namespace lab {

/// Metadata value type codes (GGUF §1.4).
enum class GgufValueType : std::uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};

/// "UINT32", "ARRAY", ...
std::string to_string(GgufValueType type);

/// One metadata value. Integers of every width (and BOOL) live in `integer`, floats in `real`;
/// an ARRAY keeps its element type and the elements in `integers`, `reals` or `strings`.
struct GgufValue {
  GgufValueType type = GgufValueType::UINT8;
  GgufValueType element_type = GgufValueType::UINT8;  ///< for arrays only
  std::int64_t integer = 0;
  double real = 0.0;
  std::string string;
  std::vector<std::int64_t> integers;
  std::vector<double> reals;
  std::vector<std::string> strings;

  bool is_integer() const;  ///< any of the eight integer types
  std::size_t array_size() const;

  static GgufValue of_u32(std::uint32_t v);
  static GgufValue of_i32(std::int32_t v);
  static GgufValue of_u64(std::uint64_t v);
  static GgufValue of_f32(float v);
  static GgufValue of_bool(bool v);
  static GgufValue of_string(std::string v);
  static GgufValue of_strings(std::vector<std::string> v);
  static GgufValue of_i32s(std::vector<std::int64_t> v);
  static GgufValue of_f32s(std::vector<double> v);
};

/// One tensor-info record, validated: known type, 1–4 non-zero dims, whole blocks per row, data
/// inside the file, aligned, and not overlapping another tensor.
struct GgufTensorInfo {
  std::string name;
  std::vector<std::uint64_t> ne;  ///< ne[0] first: ne[0] is the contiguous (input) dimension
  std::uint32_t type = 0;         ///< ggml_type code
  std::uint64_t offset = 0;       ///< from the start of the data section
  std::uint64_t nbytes = 0;
  std::uint64_t numel = 0;

  /// Row-major shape as HF/numpy writes it: ne reversed.
  std::vector<std::int64_t> shape() const;
  GgmlType ggml_type() const { return static_cast<GgmlType>(type); }
};

/// A parsed GGUF file. The tensor data stay in the memory map until dequantized.
class GgufFile {
 public:
  /// Maps and validates `path`; throws lab::Error "GGUF '<path>': <problem>" when it is invalid.
  explicit GgufFile(const std::string& path);
  /// Validates a file held in memory (used by tests and fuzzers).
  static GgufFile from_bytes(std::vector<std::uint8_t> bytes, std::string name = "<memory>");

  GgufFile(GgufFile&&) noexcept = default;
  GgufFile& operator=(GgufFile&&) noexcept = default;

  const std::string& name() const { return name_; }
  std::uint32_t version() const { return version_; }
  std::uint64_t alignment() const { return alignment_; }
  std::uint64_t data_start() const { return data_start_; }

  /// Key/value records in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kvs_; }
  const GgufValue* find(std::string_view key) const;
  /// An integer key of any width; std::nullopt when absent, lab::Error when it is not an integer.
  std::optional<std::int64_t> find_int(std::string_view key) const;
  /// Like find_int() but the key must exist.
  std::int64_t get_int(std::string_view key) const;
  /// A FLOAT32/FLOAT64 (or integer) key.
  std::optional<double> find_float(std::string_view key) const;
  std::optional<std::string> find_string(std::string_view key) const;
  std::optional<bool> find_bool(std::string_view key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  /// The tensor's bytes inside the mapping (already checked to lie inside the file).
  std::span<const std::uint8_t> tensor_bytes(const GgufTensorInfo& info) const;
  /// The tensor dequantized to fp32, row-major (shape() order).
  std::vector<float> dequantize(const GgufTensorInfo& info) const;

 private:
  GgufFile() = default;
  void parse();
  [[noreturn]] void fail(const std::string& problem) const;

  std::string name_;
  std::optional<MappedFile> mapped_;
  std::vector<std::uint8_t> owned_;
  std::span<const std::uint8_t> bytes_;
  std::uint32_t version_ = 0;
  std::uint64_t alignment_ = 32;
  std::uint64_t data_start_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kvs_;
  std::map<std::string, std::size_t, std::less<>> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, std::size_t, std::less<>> tensor_index_;
};

/// Builds GGUF files: the project's tests, fuzz seeds and tiny synthetic models. It writes
/// exactly what it is given (also invalid value types or duplicate keys), so tests can make
/// hostile files on purpose.
class GgufWriter {
 public:
  /// Byte positions inside the serialized file, for tests that patch fields.
  struct Layout {
    std::vector<std::size_t> tensor_info_start;    ///< each tensor-info record's first byte
    std::vector<std::size_t> tensor_offset_field;  ///< each record's u64 offset field
    std::size_t data_start = 0;
  };

  void set_version(std::uint32_t version) { version_ = version; }
  /// Adds a key/value record. The data alignment is taken from "general.alignment" if added.
  void add(std::string key, GgufValue value);
  /// Adds a tensor whose `data` is already encoded in `type` (ne[0] first).
  void add_tensor(std::string name, std::uint32_t type, std::vector<std::uint64_t> ne,
                  std::vector<std::uint8_t> data);
  /// Adds an F32 tensor.
  void add_f32(std::string name, std::vector<std::uint64_t> ne, const std::vector<float>& values);

  std::vector<std::uint8_t> serialize(Layout* layout = nullptr) const;
  void write(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    std::uint32_t type;
    std::vector<std::uint64_t> ne;
    std::vector<std::uint8_t> data;
  };
  std::uint32_t version_ = 3;
  std::vector<std::pair<std::string, GgufValue>> kvs_;
  std::vector<Tensor> tensors_;
};

}  // namespace lab
