#include "common/safetensors.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/quant.hpp"

namespace lab {

namespace {

constexpr std::uint64_t kMaxHeader = 100'000'000;  // the reference parser's limit

// Bytes per element of every dtype safetensors defines (0: sub-byte, rejected here).
std::optional<std::uint64_t> dtype_size(const std::string& d) {
  static const std::map<std::string, std::uint64_t> sizes = {
      {"BOOL", 1},    {"U8", 1},          {"I8", 1},          {"F8_E4M3", 1}, {"F8_E5M2", 1},
      {"F8_E8M0", 1}, {"F8_E4M3FNUZ", 1}, {"F8_E5M2FNUZ", 1}, {"I16", 2},     {"U16", 2},
      {"F16", 2},     {"BF16", 2},        {"I32", 4},         {"U32", 4},     {"F32", 4},
      {"F64", 8},     {"I64", 8},         {"U64", 8},         {"C64", 8}};
  auto it = sizes.find(d);
  if (it == sizes.end()) return std::nullopt;
  return it->second;
}

}  // namespace

void SafetensorsFile::fail(const std::string& problem) const {
  throw Error("safetensors '" + name_ + "': " + problem);
}

SafetensorsFile::SafetensorsFile(const std::string& path) : name_(path) {
  mapped_.emplace(path);
  bytes_ = mapped_->bytes();
  parse();
}

SafetensorsFile SafetensorsFile::from_bytes(std::vector<std::uint8_t> bytes, std::string name) {
  SafetensorsFile f;
  f.name_ = std::move(name);
  f.owned_ = std::move(bytes);
  f.bytes_ = f.owned_;
  f.parse();
  return f;
}

void SafetensorsFile::parse() {
  const std::uint64_t size = bytes_.size();
  if (size < 8) fail("file is " + std::to_string(size) + " bytes, shorter than the 8-byte header");
  std::uint64_t n = 0;
  std::memcpy(&n, bytes_.data(), 8);
  if (n > kMaxHeader) fail("header length " + std::to_string(n) + " exceeds 100 MB");
  if (n > size - 8)
    fail("header length " + std::to_string(n) + " runs past the end of the file (" +
         std::to_string(size) + " bytes)");
  data_start_ = 8 + n;

  // Parse the JSON, refusing duplicate top-level keys (nlohmann would keep the last silently).
  const auto* text = reinterpret_cast<const char*>(bytes_.data() + 8);
  std::vector<std::string> keys;
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(
        text, text + n,
        [&keys](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
          if (depth == 1 && event == nlohmann::json::parse_event_t::key)
            keys.push_back(parsed.get<std::string>());
          return true;
        });
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) fail("header is not a JSON object");
  std::sort(keys.begin(), keys.end());
  if (auto d = std::adjacent_find(keys.begin(), keys.end()); d != keys.end())
    fail("duplicate tensor name '" + *d + "'");

  for (const auto& [key, entry] : header.items()) {
    if (key == "__metadata__") {
      if (!entry.is_object()) fail("__metadata__ is not an object");
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) fail("__metadata__ value '" + k + "' is not a string");
        metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + key + "'";
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") ||
        !entry.contains("data_offsets"))
      fail(where + ": needs dtype, shape and data_offsets");
    SafetensorsTensor t;
    t.name = key;
    if (!entry["dtype"].is_string()) fail(where + ": dtype is not a string");
    t.dtype = entry["dtype"].get<std::string>();
    const auto elem = dtype_size(t.dtype);
    if (!elem) fail(where + ": unknown dtype '" + t.dtype + "'");
    const auto& shape = entry["shape"];
    if (!shape.is_array()) fail(where + ": shape is not an array");
    std::uint64_t numel = 1;
    for (const auto& d : shape) {
      if (!d.is_number_unsigned()) fail(where + ": shape has a negative or non-integer entry");
      const auto v = d.get<std::uint64_t>();
      if (v != 0 && numel > (std::uint64_t{1} << 62) / v) fail(where + ": shape overflows");
      numel *= v;
      t.shape.push_back(static_cast<std::int64_t>(v));
    }
    const auto& offsets = entry["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned())
      fail(where + ": data_offsets must be two non-negative integers");
    t.begin = offsets[0].get<std::uint64_t>();
    t.end = offsets[1].get<std::uint64_t>();
    if (t.end < t.begin) fail(where + ": data_offsets end before they begin");
    if (t.end - t.begin != numel * *elem)
      fail(where + ": " + std::to_string(t.end - t.begin) +
           " bytes of data, its shape and dtype need " + std::to_string(numel * *elem));
    tensors_.push_back(std::move(t));
  }
  //! [safetensors_tiling]
  // The tensors must tile the data buffer exactly: no gaps, no overlaps, nothing past the end.
  std::sort(tensors_.begin(), tensors_.end(),
            [](const auto& a, const auto& b) { return a.begin < b.begin; });
  std::uint64_t expected = 0;
  for (const auto& t : tensors_) {
    if (t.begin < expected) fail("tensor '" + t.name + "' overlaps the tensor before it");
    if (t.begin > expected) fail("gap in the data buffer before tensor '" + t.name + "'");
    if (t.end > size - data_start_) fail("tensor '" + t.name + "' runs past the end of the file");
    expected = t.end;
  }
  if (data_start_ + expected != size)
    fail("the tensors cover " + std::to_string(expected) + " bytes of a " +
         std::to_string(size - data_start_) + "-byte data buffer");
  //! [safetensors_tiling]
  for (std::size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
}

const SafetensorsTensor* SafetensorsFile::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

std::span<const std::uint8_t> SafetensorsFile::bytes(const SafetensorsTensor& t) const {
  return bytes_.subspan(data_start_ + t.begin, t.end - t.begin);
}

Tensor SafetensorsFile::to_tensor(const SafetensorsTensor& t) const {
  Tensor out;
  out.shape = t.shape;
  const auto src = bytes(t);
  GgmlType type;
  if (t.dtype == "F32")
    type = GgmlType::F32;
  else if (t.dtype == "F16")
    type = GgmlType::F16;
  else if (t.dtype == "BF16")
    type = GgmlType::BF16;
  else
    fail("tensor '" + t.name + "' has dtype " + t.dtype + " (supported: F32, F16, BF16)");
  out.data.resize(src.size() / (type == GgmlType::F32 ? 4 : 2));
  if (!out.data.empty()) dequantize_row(type, src, out.data);
  return out;
}

namespace {

// The 8-byte length, the JSON header padded with spaces to a multiple of 8, and the dtype's
// element size; the data follow in the order of `tensors`.
std::vector<std::uint8_t> safetensors_header(
    const std::vector<std::pair<std::string, const Tensor*>>& tensors, DType dtype,
    const std::map<std::string, std::string>& metadata) {
  const char* name = dtype == DType::FP32   ? "F32"
                     : dtype == DType::FP16 ? "F16"
                     : dtype == DType::BF16 ? "BF16"
                                            : nullptr;
  if (name == nullptr)
    throw Error("safetensors: can write fp32, fp16 or bf16, not " + to_string(dtype));
  const std::uint64_t elem = bytes_per_element(dtype);
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (const auto& [tensor_name, t] : tensors) {
    require(static_cast<std::int64_t>(t->data.size()) == t->numel(),
            "safetensors: tensor '" + tensor_name + "' has data that does not match its shape");
    const std::uint64_t nbytes = t->data.size() * elem;
    header[tensor_name] = {
        {"dtype", name}, {"shape", t->shape}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');  // 8 + N becomes a multiple of 8
  std::vector<std::uint8_t> out(8 + json.size());
  const std::uint64_t n = json.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, json.data(), json.size());
  return out;
}

void append_data(std::vector<std::uint8_t>& out, const Tensor& t, DType dtype) {
  const std::size_t elem = bytes_per_element(dtype);
  const std::size_t start = out.size();
  out.resize(start + t.data.size() * elem);
  std::uint8_t* p = out.data() + start;
  for (float v : t.data) {
    if (dtype == DType::FP32) {
      std::memcpy(p, &v, 4);
    } else {
      const std::uint16_t h = dtype == DType::FP16 ? fp32_to_fp16(v) : fp32_to_bf16(v);
      std::memcpy(p, &h, 2);
    }
    p += elem;
  }
}

}  // namespace

std::vector<std::uint8_t> serialize_safetensors(
    const std::vector<std::pair<std::string, const Tensor*>>& tensors, DType dtype,
    const std::map<std::string, std::string>& metadata) {
  std::vector<std::uint8_t> out = safetensors_header(tensors, dtype, metadata);
  for (const auto& entry : tensors) append_data(out, *entry.second, dtype);
  return out;
}

void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, const Tensor*>>& tensors,
                       DType dtype, const std::map<std::string, std::string>& metadata) {
  // Streams tensor by tensor, so a large model is never held twice in memory.
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) throw Error("cannot write '" + path + "'");
  bool ok = true;
  std::vector<std::uint8_t> chunk = safetensors_header(tensors, dtype, metadata);
  ok = ok && std::fwrite(chunk.data(), 1, chunk.size(), f) == chunk.size();
  for (const auto& entry : tensors) {
    chunk.clear();
    append_data(chunk, *entry.second, dtype);
    ok = ok && (chunk.empty() || std::fwrite(chunk.data(), 1, chunk.size(), f) == chunk.size());
  }
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) throw Error("cannot write '" + path + "': short write (disk full?)");
}

}  // namespace lab
