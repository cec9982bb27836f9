#include "common/gguf.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>

#include "common/error.hpp"

namespace lab {

namespace {

constexpr std::uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr std::uint64_t kMaxKeyLength = 65535;
constexpr std::uint64_t kMaxTensorName = 63;  // ggml: GGML_MAX_NAME = 64 including the NUL
constexpr std::uint32_t kMaxDims = 4;

std::size_t scalar_size(GgufValueType t) {
  switch (t) {
    case GgufValueType::UINT8:
    case GgufValueType::INT8:
    case GgufValueType::BOOL:
      return 1;
    case GgufValueType::UINT16:
    case GgufValueType::INT16:
      return 2;
    case GgufValueType::UINT32:
    case GgufValueType::INT32:
    case GgufValueType::FLOAT32:
      return 4;
    case GgufValueType::UINT64:
    case GgufValueType::INT64:
    case GgufValueType::FLOAT64:
      return 8;
    case GgufValueType::STRING:
      return 8;  // at least its length field
    case GgufValueType::ARRAY:
      return 12;  // at least its element type and count
  }
  return 0;
}

bool valid_value_type(std::uint32_t code) {
  return code <= 12;
}

bool is_integer_type(GgufValueType t) {
  switch (t) {
    case GgufValueType::UINT8:
    case GgufValueType::INT8:
    case GgufValueType::UINT16:
    case GgufValueType::INT16:
    case GgufValueType::UINT32:
    case GgufValueType::INT32:
    case GgufValueType::UINT64:
    case GgufValueType::INT64:
      return true;
    default:
      return false;
  }
}

std::uint64_t align_up(std::uint64_t x, std::uint64_t a) {
  return x + (a - x % a) % a;
}

// A cursor over the file that checks every read against the end. `fail` adds the file name.
class Reader {
 public:
  Reader(std::span<const std::uint8_t> bytes, std::string file_name)
      : bytes_(bytes), file_name_(std::move(file_name)) {}

  std::size_t pos() const { return pos_; }
  std::size_t remaining() const { return bytes_.size() - pos_; }
  [[noreturn]] void fail(const std::string& problem) const {
    throw Error("GGUF '" + file_name_ + "': " + problem);
  }

  void need(std::uint64_t n, const std::string& what) const {
    if (n > remaining())
      fail("truncated: " + what + " at offset " + std::to_string(pos_) + " needs " +
           std::to_string(n) + " bytes, only " + std::to_string(remaining()) + " remain");
  }
  template <typename T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string read_string(const std::string& what, std::uint64_t max_length) {
    const auto length = read<std::uint64_t>(what + " length");
    if (length > remaining())
      fail(what + ": string length " + std::to_string(length) + " at offset " +
           std::to_string(pos_ - 8) + " runs past the end of the file");
    if (length > max_length)
      fail(what + ": string length " + std::to_string(length) + " exceeds the limit of " +
           std::to_string(max_length));
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), length);
    pos_ += length;
    return s;
  }

 private:
  std::span<const std::uint8_t> bytes_;
  std::size_t pos_ = 0;
  std::string file_name_;
};

std::int64_t read_integer(Reader& r, GgufValueType t, const std::string& what) {
  switch (t) {
    case GgufValueType::UINT8:
      return r.read<std::uint8_t>(what);
    case GgufValueType::INT8:
      return r.read<std::int8_t>(what);
    case GgufValueType::UINT16:
      return r.read<std::uint16_t>(what);
    case GgufValueType::INT16:
      return r.read<std::int16_t>(what);
    case GgufValueType::UINT32:
      return r.read<std::uint32_t>(what);
    case GgufValueType::INT32:
      return r.read<std::int32_t>(what);
    case GgufValueType::INT64:
      return r.read<std::int64_t>(what);
    case GgufValueType::UINT64: {
      const auto v = r.read<std::uint64_t>(what);
      if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        r.fail(what + ": UINT64 value " + std::to_string(v) + " is too large");
      return static_cast<std::int64_t>(v);
    }
    case GgufValueType::BOOL: {
      const auto v = r.read<std::uint8_t>(what);
      if (v > 1) r.fail(what + ": BOOL byte is " + std::to_string(v) + ", must be 0 or 1");
      return v;
    }
    default:
      r.fail(what + ": not an integer type");
  }
}

double read_real(Reader& r, GgufValueType t, const std::string& what) {
  if (t == GgufValueType::FLOAT32) return r.read<float>(what);
  return r.read<double>(what);
}

GgufValue read_value(Reader& r, GgufValueType type, const std::string& what) {
  GgufValue v;
  v.type = type;
  switch (type) {
    case GgufValueType::FLOAT32:
    case GgufValueType::FLOAT64:
      v.real = read_real(r, type, what);
      break;
    case GgufValueType::STRING:
      v.string = r.read_string(what, std::numeric_limits<std::uint64_t>::max());
      break;
    case GgufValueType::ARRAY: {
      const auto element = r.read<std::uint32_t>(what + " element type");
      if (!valid_value_type(element))
        r.fail(what + ": invalid array element type " + std::to_string(element));
      v.element_type = static_cast<GgufValueType>(element);
      if (v.element_type == GgufValueType::ARRAY)
        r.fail(what + ": arrays of arrays are not supported");
      const auto count = r.read<std::uint64_t>(what + " element count");
      // Every element takes at least scalar_size bytes: a count the rest of the file cannot hold
      // is rejected before anything is allocated.
      if (count > r.remaining() / scalar_size(v.element_type))
        r.fail(what + ": array of " + std::to_string(count) + " " + to_string(v.element_type) +
               " elements runs past the end of the file");
      const std::string item = what + " element";
      if (v.element_type == GgufValueType::STRING) {
        v.strings.reserve(count);
        for (std::uint64_t i = 0; i < count; ++i)
          v.strings.push_back(r.read_string(item, std::numeric_limits<std::uint64_t>::max()));
      } else if (v.element_type == GgufValueType::FLOAT32 ||
                 v.element_type == GgufValueType::FLOAT64) {
        v.reals.reserve(count);
        for (std::uint64_t i = 0; i < count; ++i)
          v.reals.push_back(read_real(r, v.element_type, item));
      } else {
        v.integers.reserve(count);
        for (std::uint64_t i = 0; i < count; ++i)
          v.integers.push_back(read_integer(r, v.element_type, item));
      }
      break;
    }
    default:
      v.integer = read_integer(r, type, what);
      break;
  }
  return v;
}

}  // namespace

std::string to_string(GgufValueType type) {
  static const char* names[] = {"UINT8",  "INT8",    "UINT16", "INT16",  "UINT32",
                                "INT32",  "FLOAT32", "BOOL",   "STRING", "ARRAY",
                                "UINT64", "INT64",   "FLOAT64"};
  const auto code = static_cast<std::uint32_t>(type);
  return code <= 12 ? names[code] : "type " + std::to_string(code);
}

bool GgufValue::is_integer() const {
  return is_integer_type(type);
}

std::size_t GgufValue::array_size() const {
  return integers.size() + reals.size() + strings.size();
}

GgufValue GgufValue::of_u32(std::uint32_t x) {
  GgufValue v;
  v.type = GgufValueType::UINT32;
  v.integer = x;
  return v;
}
GgufValue GgufValue::of_i32(std::int32_t x) {
  GgufValue v;
  v.type = GgufValueType::INT32;
  v.integer = x;
  return v;
}
GgufValue GgufValue::of_u64(std::uint64_t x) {
  GgufValue v;
  v.type = GgufValueType::UINT64;
  v.integer = static_cast<std::int64_t>(x);
  return v;
}
GgufValue GgufValue::of_f32(float x) {
  GgufValue v;
  v.type = GgufValueType::FLOAT32;
  v.real = x;
  return v;
}
GgufValue GgufValue::of_bool(bool x) {
  GgufValue v;
  v.type = GgufValueType::BOOL;
  v.integer = x ? 1 : 0;
  return v;
}
GgufValue GgufValue::of_string(std::string x) {
  GgufValue v;
  v.type = GgufValueType::STRING;
  v.string = std::move(x);
  return v;
}
GgufValue GgufValue::of_strings(std::vector<std::string> x) {
  GgufValue v;
  v.type = GgufValueType::ARRAY;
  v.element_type = GgufValueType::STRING;
  v.strings = std::move(x);
  return v;
}
GgufValue GgufValue::of_i32s(std::vector<std::int64_t> x) {
  GgufValue v;
  v.type = GgufValueType::ARRAY;
  v.element_type = GgufValueType::INT32;
  v.integers = std::move(x);
  return v;
}
GgufValue GgufValue::of_f32s(std::vector<double> x) {
  GgufValue v;
  v.type = GgufValueType::ARRAY;
  v.element_type = GgufValueType::FLOAT32;
  v.reals = std::move(x);
  return v;
}

std::vector<std::int64_t> GgufTensorInfo::shape() const {
  std::vector<std::int64_t> s(ne.rbegin(), ne.rend());
  return s;
}

void GgufFile::fail(const std::string& problem) const {
  throw Error("GGUF '" + name_ + "': " + problem);
}

GgufFile::GgufFile(const std::string& path) : name_(path) {
  mapped_.emplace(path);
  bytes_ = mapped_->bytes();
  parse();
}

GgufFile GgufFile::from_bytes(std::vector<std::uint8_t> bytes, std::string name) {
  GgufFile f;
  f.name_ = std::move(name);
  f.owned_ = std::move(bytes);
  f.bytes_ = f.owned_;
  f.parse();
  return f;
}

//! [gguf_header]
void GgufFile::parse() {
  Reader r(bytes_, name_);
  // Header: magic, version, two counts. A big-endian file reads its version byte-swapped.
  if (bytes_.size() < 4 || r.read<std::uint32_t>("magic") != kMagic)
    fail("not a GGUF file (the first 4 bytes are not \"GGUF\")");
  version_ = r.read<std::uint32_t>("version");
  if (version_ != 2 && version_ != 3) {
    if ((version_ & 0xFFFFu) == 0) fail("big-endian GGUF files are not supported");
    fail("unsupported GGUF version " + std::to_string(version_) + " (supported: 2, 3)");
  }
  const auto tensor_count = r.read<std::uint64_t>("tensor count");
  const auto kv_count = r.read<std::uint64_t>("metadata key/value count");
  // Each record needs a minimum number of bytes (a key/value: 8-byte length, a 1-byte key, a type
  // and a 1-byte value; a tensor info: length, 1-byte name, n_dims, one dim, type, offset), so
  // counts the file cannot hold are rejected before anything is allocated.
  constexpr std::uint64_t kMinKv = 8 + 1 + 4 + 1, kMinTensor = 8 + 1 + 4 + 8 + 4 + 8;
  if (kv_count > r.remaining() / kMinKv)
    fail("metadata key/value count " + std::to_string(kv_count) + " is more than the file's " +
         std::to_string(bytes_.size()) + " bytes can hold");
  if (tensor_count > r.remaining() / kMinTensor)
    fail("tensor count " + std::to_string(tensor_count) + " is more than the file's " +
         std::to_string(bytes_.size()) + " bytes can hold");
  //! [gguf_header]

  kvs_.reserve(kv_count);
  for (std::uint64_t i = 0; i < kv_count; ++i) {
    const std::string where = "key/value " + std::to_string(i);
    std::string key = r.read_string(where + " key", kMaxKeyLength);
    if (key.empty()) fail(where + ": empty key");
    const auto type = r.read<std::uint32_t>("value type of '" + key + "'");
    if (!valid_value_type(type))
      fail("key '" + key + "': invalid value type " + std::to_string(type));
    GgufValue value = read_value(r, static_cast<GgufValueType>(type), "key '" + key + "'");
    if (!kv_index_.emplace(key, kvs_.size()).second) fail("duplicate key '" + key + "'");
    kvs_.emplace_back(std::move(key), std::move(value));
  }

  if (const GgufValue* a = find("general.alignment")) {
    if (a->type != GgufValueType::UINT32)
      fail("general.alignment has type " + to_string(a->type) + ", must be UINT32");
    const auto value = static_cast<std::uint64_t>(a->integer);
    if (value == 0 || !std::has_single_bit(value))
      fail("general.alignment " + std::to_string(value) + " is not a power of two");
    alignment_ = value;
  }

  tensors_.reserve(tensor_count);
  for (std::uint64_t i = 0; i < tensor_count; ++i) {
    GgufTensorInfo t;
    t.name = r.read_string("tensor " + std::to_string(i) + " name",
                           std::numeric_limits<std::uint64_t>::max());
    if (t.name.empty()) fail("tensor " + std::to_string(i) + " has an empty name");
    if (t.name.size() > kMaxTensorName)
      fail("tensor name '" + t.name.substr(0, 80) + "' is longer than 63 bytes");
    const std::string where = "tensor '" + t.name + "'";
    const auto n_dims = r.read<std::uint32_t>(where + " n_dims");
    if (n_dims == 0 || n_dims > kMaxDims)
      fail(where + ": n_dims is " + std::to_string(n_dims) + ", must be 1..4");
    t.numel = 1;
    for (std::uint32_t d = 0; d < n_dims; ++d) {
      const auto n = r.read<std::uint64_t>(where + " dim");
      if (n == 0) fail(where + ": dimension " + std::to_string(d) + " is zero");
      // Keep numel (and later byte counts) far from overflow: at most 2^62 elements.
      if (n > (std::uint64_t{1} << 62) / t.numel)
        fail(where + ": dimensions overflow (numel too large)");
      t.numel *= n;
      t.ne.push_back(n);
    }
    t.type = r.read<std::uint32_t>(where + " type");
    const auto info = ggml_type_info(t.type);
    if (!info) fail(where + ": unknown ggml type code " + std::to_string(t.type));
    if (t.ne[0] % info->block_size != 0)
      fail(where + ": ne[0] = " + std::to_string(t.ne[0]) + " is not a multiple of the " +
           info->name + " block size " + std::to_string(info->block_size));
    t.nbytes = t.numel / info->block_size * info->block_bytes;
    t.offset = r.read<std::uint64_t>(where + " offset");
    if (!tensor_index_.emplace(t.name, tensors_.size()).second)
      fail("duplicate tensor name '" + t.name + "'");
    tensors_.push_back(std::move(t));
  }

  //! [gguf_data]
  // The data section starts at the next multiple of the alignment (counted from the file start);
  // every tensor must be aligned inside it, end inside the file and not overlap the next one.
  data_start_ = align_up(r.pos(), alignment_);
  const std::uint64_t file_size = bytes_.size();
  std::vector<const GgufTensorInfo*> by_offset;
  for (const auto& t : tensors_) {
    const std::string where = "tensor '" + t.name + "'";
    if (t.offset % alignment_ != 0)
      fail(where + ": offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
           std::to_string(alignment_));
    if (data_start_ > file_size || t.offset > file_size - data_start_ ||
        t.nbytes > file_size - data_start_ - t.offset)
      fail(where + ": data [" + std::to_string(t.offset) + ", +" + std::to_string(t.nbytes) +
           ") past the data section start " + std::to_string(data_start_) +
           " runs past the end of the file (" + std::to_string(file_size) + " bytes)");
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const auto* a, const auto* b) { return a->offset < b->offset; });
  for (std::size_t i = 1; i < by_offset.size(); ++i) {
    const auto* prev = by_offset[i - 1];
    if (by_offset[i]->offset < prev->offset + prev->nbytes)
      fail("tensors '" + prev->name + "' and '" + by_offset[i]->name + "' overlap");
  }
  //! [gguf_data]
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second].second;
}

std::optional<std::int64_t> GgufFile::find_int(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_integer())
    fail("key '" + std::string(key) + "' has type " + to_string(v->type) + ", expected an integer");
  return v->integer;
}

std::int64_t GgufFile::get_int(std::string_view key) const {
  auto v = find_int(key);
  if (!v) fail("required key '" + std::string(key) + "' is missing");
  return *v;
}

std::optional<double> GgufFile::find_float(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (v->type == GgufValueType::FLOAT32 || v->type == GgufValueType::FLOAT64) return v->real;
  if (v->is_integer()) return static_cast<double>(v->integer);
  fail("key '" + std::string(key) + "' has type " + to_string(v->type) + ", expected a number");
}

std::optional<std::string> GgufFile::find_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (v->type != GgufValueType::STRING)
    fail("key '" + std::string(key) + "' has type " + to_string(v->type) + ", expected STRING");
  return v->string;
}

std::optional<bool> GgufFile::find_bool(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (v->type != GgufValueType::BOOL)
    fail("key '" + std::string(key) + "' has type " + to_string(v->type) + ", expected BOOL");
  return v->integer != 0;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

std::span<const std::uint8_t> GgufFile::tensor_bytes(const GgufTensorInfo& info) const {
  return bytes_.subspan(data_start_ + info.offset, info.nbytes);
}

std::vector<float> GgufFile::dequantize(const GgufTensorInfo& info) const {
  const auto type_info = ggml_type_info(info.type);
  if (!type_info->can_dequantize)
    fail("tensor '" + info.name + "' has type " + type_info->name +
         ", which this loader cannot dequantize (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, "
         "Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)");
  std::vector<float> out(info.numel);
  const std::uint64_t row_elements = info.ne[0];
  const std::uint64_t row_bytes = row_elements / type_info->block_size * type_info->block_bytes;
  const std::uint64_t rows = info.numel / row_elements;
  const auto bytes = tensor_bytes(info);
  for (std::uint64_t r = 0; r < rows; ++r)
    dequantize_row(info.ggml_type(), bytes.subspan(r * row_bytes, row_bytes),
                   std::span<float>(out).subspan(r * row_elements, row_elements));
  return out;
}

// --- writer ---------------------------------------------------------------------------------

namespace {

template <typename T>
void put(std::vector<std::uint8_t>& out, T value) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(&value);
  out.insert(out.end(), p, p + sizeof(T));
}

void put_string(std::vector<std::uint8_t>& out, const std::string& s) {
  put<std::uint64_t>(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

void put_scalar(std::vector<std::uint8_t>& out, GgufValueType t, std::int64_t i, double r) {
  switch (t) {
    case GgufValueType::UINT8:
    case GgufValueType::INT8:
    case GgufValueType::BOOL:
      put(out, static_cast<std::uint8_t>(i));
      break;
    case GgufValueType::UINT16:
    case GgufValueType::INT16:
      put(out, static_cast<std::uint16_t>(i));
      break;
    case GgufValueType::UINT32:
    case GgufValueType::INT32:
      put(out, static_cast<std::uint32_t>(i));
      break;
    case GgufValueType::UINT64:
    case GgufValueType::INT64:
      put(out, static_cast<std::uint64_t>(i));
      break;
    case GgufValueType::FLOAT32:
      put(out, static_cast<float>(r));
      break;
    case GgufValueType::FLOAT64:
      put(out, r);
      break;
    default:
      break;  // invalid codes are written with no payload (hostile-file tests)
  }
}

}  // namespace

void GgufWriter::add(std::string key, GgufValue value) {
  kvs_.emplace_back(std::move(key), std::move(value));
}

void GgufWriter::add_tensor(std::string name, std::uint32_t type, std::vector<std::uint64_t> ne,
                            std::vector<std::uint8_t> data) {
  tensors_.push_back({std::move(name), type, std::move(ne), std::move(data)});
}

void GgufWriter::add_f32(std::string name, std::vector<std::uint64_t> ne,
                         const std::vector<float>& values) {
  std::vector<std::uint8_t> data(values.size() * 4);
  if (!values.empty()) std::memcpy(data.data(), values.data(), data.size());
  add_tensor(std::move(name), static_cast<std::uint32_t>(GgmlType::F32), std::move(ne),
             std::move(data));
}

std::vector<std::uint8_t> GgufWriter::serialize(Layout* layout) const {
  std::uint64_t alignment = 32;
  for (const auto& [key, value] : kvs_)
    if (key == "general.alignment" && value.integer > 0)
      alignment = static_cast<std::uint64_t>(value.integer);
  std::vector<std::uint8_t> out;
  put<std::uint32_t>(out, kMagic);
  put<std::uint32_t>(out, version_);
  put<std::uint64_t>(out, tensors_.size());
  put<std::uint64_t>(out, kvs_.size());
  for (const auto& [key, v] : kvs_) {
    put_string(out, key);
    put<std::uint32_t>(out, static_cast<std::uint32_t>(v.type));
    if (v.type == GgufValueType::STRING) {
      put_string(out, v.string);
    } else if (v.type == GgufValueType::ARRAY) {
      put<std::uint32_t>(out, static_cast<std::uint32_t>(v.element_type));
      put<std::uint64_t>(out, v.array_size());
      for (const auto& s : v.strings) put_string(out, s);
      for (auto i : v.integers) put_scalar(out, v.element_type, i, 0.0);
      for (auto r : v.reals) put_scalar(out, v.element_type, 0, r);
    } else {
      put_scalar(out, v.type, v.integer, v.real);
    }
  }
  std::uint64_t offset = 0;
  std::vector<std::uint64_t> offsets;
  for (const auto& t : tensors_) {
    if (layout) layout->tensor_info_start.push_back(out.size());
    put_string(out, t.name);
    put<std::uint32_t>(out, static_cast<std::uint32_t>(t.ne.size()));
    for (auto n : t.ne) put<std::uint64_t>(out, n);
    put<std::uint32_t>(out, t.type);
    if (layout) layout->tensor_offset_field.push_back(out.size());
    put<std::uint64_t>(out, offset);
    offsets.push_back(offset);
    offset = align_up(offset + t.data.size(), alignment);
  }
  out.resize(align_up(out.size(), alignment), 0);
  if (layout) layout->data_start = out.size();
  const std::size_t data_start = out.size();
  for (std::size_t i = 0; i < tensors_.size(); ++i) {
    out.resize(data_start + offsets[i], 0);
    out.insert(out.end(), tensors_[i].data.begin(), tensors_[i].data.end());
  }
  if (!tensors_.empty()) out.resize(align_up(out.size(), alignment), 0);
  return out;
}

void GgufWriter::write(const std::string& path) const {
  write_file(path, serialize());
}

}  // namespace lab
