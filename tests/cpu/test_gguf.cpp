// The GGUF container: every metadata type round-trips through the writer and the memory-mapped
// reader, and every class of hostile or truncated file is refused with a clear lab::Error.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/gguf.hpp"
#include "common/random.hpp"

namespace {

using lab::GgufFile;
using lab::GgufValue;
using lab::GgufValueType;
using lab::GgufWriter;

// Parses `bytes` and expects lab::Error whose message contains `needle`.
void expect_rejected(std::vector<std::uint8_t> bytes, const std::string& needle) {
  try {
    GgufFile::from_bytes(std::move(bytes), "hostile.gguf");
    ADD_FAILURE() << "accepted a file that should fail with '" << needle << "'";
  } catch (const lab::Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
        << "message: " << e.what() << "\nexpected to contain: " << needle;
    EXPECT_NE(std::string(e.what()).find("hostile.gguf"), std::string::npos) << e.what();
  }
}

template <typename T>
void poke(std::vector<std::uint8_t>& bytes, std::size_t at, T value) {
  std::memcpy(bytes.data() + at, &value, sizeof(T));
}

// A small valid file: one key, two F32 tensors.
GgufWriter small_writer() {
  GgufWriter w;
  w.add("general.architecture", GgufValue::of_string("llama"));
  w.add_f32("a", {4, 2}, std::vector<float>(8, 1.0f));
  w.add_f32("b", {3}, {1, 2, 3});
  return w;
}

TEST(Gguf, RoundTripsEveryValueTypeThroughAFile) {
  GgufWriter w;
  auto scalar = [](GgufValueType t, std::int64_t i) {
    GgufValue v;
    v.type = t;
    v.integer = i;
    return v;
  };
  w.add("u8", scalar(GgufValueType::UINT8, 200));
  w.add("i8", scalar(GgufValueType::INT8, -100));
  w.add("u16", scalar(GgufValueType::UINT16, 60000));
  w.add("i16", scalar(GgufValueType::INT16, -30000));
  w.add("u32", GgufValue::of_u32(4000000000u));
  w.add("i32", GgufValue::of_i32(-2000000000));
  w.add("u64", GgufValue::of_u64(1ull << 40));
  w.add("i64", scalar(GgufValueType::INT64, -(1ll << 40)));
  w.add("f32", GgufValue::of_f32(0.25f));
  GgufValue f64;
  f64.type = GgufValueType::FLOAT64;
  f64.real = 1e-300;
  w.add("f64", f64);
  w.add("yes", GgufValue::of_bool(true));
  w.add("text", GgufValue::of_string("héllo"));
  w.add("strings", GgufValue::of_strings({"a", "", "ccc"}));
  w.add("ints", GgufValue::of_i32s({1, -2, 3}));
  w.add("reals", GgufValue::of_f32s({0.5, -1.5}));
  w.add("general.alignment", GgufValue::of_u32(64));
  w.add_f32("t", {2, 3}, {1, 2, 3, 4, 5, 6});

  const auto path = std::filesystem::temp_directory_path() / "lab_test_gguf_roundtrip.gguf";
  w.write(path.string());
  const GgufFile f(path.string());
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_start() % 64, 0u);
  EXPECT_EQ(f.get_int("u8"), 200);
  EXPECT_EQ(f.get_int("i8"), -100);
  EXPECT_EQ(f.get_int("u16"), 60000);
  EXPECT_EQ(f.get_int("i16"), -30000);
  EXPECT_EQ(f.get_int("u32"), 4000000000ll);
  EXPECT_EQ(f.get_int("i32"), -2000000000);
  EXPECT_EQ(f.get_int("u64"), 1ll << 40);
  EXPECT_EQ(f.get_int("i64"), -(1ll << 40));
  EXPECT_EQ(*f.find_float("f32"), 0.25);
  EXPECT_EQ(*f.find_float("f64"), 1e-300);
  EXPECT_EQ(*f.find_bool("yes"), true);
  EXPECT_EQ(*f.find_string("text"), "héllo");
  EXPECT_EQ(f.find("strings")->strings, (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(f.find("ints")->integers, (std::vector<std::int64_t>{1, -2, 3}));
  EXPECT_EQ(f.find("reals")->reals, (std::vector<double>{0.5, -1.5}));
  EXPECT_EQ(f.find("missing"), nullptr);
  EXPECT_THROW(f.get_int("text"), lab::Error);  // a string is not an integer
  EXPECT_THROW(f.get_int("missing"), lab::Error);

  const auto* t = f.find_tensor("t");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->shape(), (std::vector<std::int64_t>{3, 2}));  // ne reversed
  EXPECT_EQ(f.dequantize(*t), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  std::filesystem::remove(path);
}

TEST(Gguf, AcceptsVersion2AndDefaultAlignment) {
  GgufWriter w = small_writer();
  w.set_version(2);
  const auto f = GgufFile::from_bytes(w.serialize());
  EXPECT_EQ(f.version(), 2u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.tensors().size(), 2u);
}

// --- one test per failure class --------------------------------------------------------------

TEST(GgufHostile, BadMagic) {
  auto b = small_writer().serialize();
  b[0] = 'X';
  expect_rejected(b, "not a GGUF file");
}

TEST(GgufHostile, UnsupportedVersion) {
  auto b = small_writer().serialize();
  poke<std::uint32_t>(b, 4, 1);
  expect_rejected(b, "unsupported GGUF version 1");
  poke<std::uint32_t>(b, 4, 4);
  expect_rejected(b, "unsupported GGUF version 4");
  poke<std::uint32_t>(b, 4, 0x03000000);  // a big-endian file
  expect_rejected(b, "big-endian");
}

TEST(GgufHostile, TruncatedHeader) {
  auto b = small_writer().serialize();
  b.resize(12);
  expect_rejected(b, "truncated");
}

TEST(GgufHostile, AbsurdKeyValueCount) {
  auto b = small_writer().serialize();
  poke<std::uint64_t>(b, 16, 1ull << 60);
  expect_rejected(b, "key/value count");
}

TEST(GgufHostile, AbsurdTensorCount) {
  auto b = small_writer().serialize();
  poke<std::uint64_t>(b, 8, 1ull << 62);
  expect_rejected(b, "tensor count");
}

TEST(GgufHostile, StringLengthPastEndOfFile) {
  auto b = small_writer().serialize();
  poke<std::uint64_t>(b, 24, 1ull << 40);  // the first key's length
  expect_rejected(b, "runs past the end of the file");
}

TEST(GgufHostile, KeyTooLong) {
  GgufWriter w;
  w.add(std::string(70000, 'k'), GgufValue::of_u32(1));
  expect_rejected(w.serialize(), "exceeds the limit");
}

TEST(GgufHostile, EmptyKey) {
  GgufWriter w;
  w.add("", GgufValue::of_u32(1));
  expect_rejected(w.serialize(), "empty key");
}

TEST(GgufHostile, InvalidValueType) {
  GgufWriter w;
  GgufValue v;
  v.type = static_cast<GgufValueType>(13);
  w.add("weird", v);
  expect_rejected(w.serialize(), "invalid value type 13");
}

TEST(GgufHostile, InvalidArrayElementType) {
  GgufWriter w;
  GgufValue v;
  v.type = GgufValueType::ARRAY;
  v.element_type = static_cast<GgufValueType>(77);
  w.add("weird", v);
  expect_rejected(w.serialize(), "invalid array element type 77");
}

TEST(GgufHostile, ArrayOfArrays) {
  GgufWriter w;
  GgufValue v;
  v.type = GgufValueType::ARRAY;
  v.element_type = GgufValueType::ARRAY;
  w.add("nested", v);
  expect_rejected(w.serialize(), "arrays of arrays");
}

TEST(GgufHostile, ArrayCountPastEndOfFile) {
  GgufWriter w;
  w.add("ints", GgufValue::of_i32s({1, 2, 3}));
  auto b = w.serialize();
  // key length (8) + "ints" (4) + value type (4) + element type (4), then the u64 count.
  poke<std::uint64_t>(b, 24 + 8 + 4 + 4 + 4, 1ull << 50);
  expect_rejected(b, "runs past the end of the file");
}

TEST(GgufHostile, InvalidBool) {
  GgufWriter w;
  GgufValue v;
  v.type = GgufValueType::BOOL;
  v.integer = 7;
  w.add("flag", v);
  expect_rejected(w.serialize(), "must be 0 or 1");
}

TEST(GgufHostile, DuplicateKey) {
  GgufWriter w;
  w.add("k", GgufValue::of_u32(1));
  w.add("k", GgufValue::of_u32(2));
  expect_rejected(w.serialize(), "duplicate key 'k'");
}

TEST(GgufHostile, BadAlignment) {
  GgufWriter w;
  w.add("general.alignment", GgufValue::of_u32(24));
  expect_rejected(w.serialize(), "not a power of two");
  GgufWriter w2;
  w2.add("general.alignment", GgufValue::of_string("32"));
  expect_rejected(w2.serialize(), "must be UINT32");
}

TEST(GgufHostile, DuplicateTensorName) {
  GgufWriter w;
  w.add_f32("same", {2}, {1, 2});
  w.add_f32("same", {2}, {3, 4});
  expect_rejected(w.serialize(), "duplicate tensor name 'same'");
}

TEST(GgufHostile, TensorNameTooLong) {
  GgufWriter w;
  w.add_f32(std::string(64, 'n'), {1}, {1});
  expect_rejected(w.serialize(), "longer than 63 bytes");
}

TEST(GgufHostile, TooManyDims) {
  GgufWriter w;
  w.add_f32("t", {1, 1, 1, 1, 1}, {1});
  expect_rejected(w.serialize(), "n_dims is 5");
}

TEST(GgufHostile, ZeroDims) {
  GgufWriter w;
  w.add_f32("t", {}, {});
  expect_rejected(w.serialize(), "n_dims is 0");
}

TEST(GgufHostile, ZeroDimension) {
  GgufWriter w;
  w.add_f32("t", {4, 0}, {});
  expect_rejected(w.serialize(), "dimension 1 is zero");
}

TEST(GgufHostile, OverflowingDimensions) {
  GgufWriter w;
  w.add_f32("t", {1ull << 32, 1ull << 32}, {});
  expect_rejected(w.serialize(), "overflow");
}

TEST(GgufHostile, UnknownGgmlType) {
  GgufWriter w;
  w.add_tensor("t", 4, {32}, std::vector<std::uint8_t>(32));  // code 4 was removed from ggml
  expect_rejected(w.serialize(), "unknown ggml type code 4");
}

TEST(GgufHostile, Ne0NotAMultipleOfTheBlockSize) {
  GgufWriter w;
  w.add_tensor("t", static_cast<std::uint32_t>(lab::GgmlType::Q4_1), {48},
               std::vector<std::uint8_t>(40));
  expect_rejected(w.serialize(), "not a multiple of the Q4_1 block size 32");
}

TEST(GgufHostile, MisalignedOffset) {
  GgufWriter::Layout layout;
  auto b = small_writer().serialize(&layout);
  poke<std::uint64_t>(b, layout.tensor_offset_field[1], 36);
  expect_rejected(b, "not a multiple of the alignment");
}

TEST(GgufHostile, DataPastEndOfFile) {
  GgufWriter::Layout layout;
  auto b = small_writer().serialize(&layout);
  poke<std::uint64_t>(b, layout.tensor_offset_field[1], 1ull << 40);
  expect_rejected(b, "runs past the end of the file");
  auto c = small_writer().serialize();
  c.resize(c.size() - 40);  // cut into the last tensor's data
  expect_rejected(c, "runs past the end of the file");
}

TEST(GgufHostile, OverlappingTensors) {
  GgufWriter::Layout layout;
  auto b = small_writer().serialize(&layout);
  poke<std::uint64_t>(b, layout.tensor_offset_field[1], 0);  // b now sits on top of a
  expect_rejected(b, "overlap");
}

TEST(GgufHostile, UnsupportedTypeForDequantization) {
  GgufWriter w;
  w.add_tensor("t", static_cast<std::uint32_t>(lab::GgmlType::Q2_K), {256},
               std::vector<std::uint8_t>(84));
  const auto f = GgufFile::from_bytes(w.serialize(), "hostile.gguf");  // valid container
  try {
    f.dequantize(f.tensors()[0]);
    ADD_FAILURE() << "dequantized Q2_K";
  } catch (const lab::Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot dequantize"), std::string::npos) << e.what();
  }
}

// Every prefix of a valid file is refused with lab::Error (never a crash or an out-of-bounds
// read: the ASan build checks that), and so is every file with one byte changed, or it parses.
TEST(GgufHostile, EveryTruncationAndRandomByteFlips) {
  GgufWriter w = small_writer();
  w.add("tokens", GgufValue::of_strings({"x", "yy", "zzz"}));
  w.add("types", GgufValue::of_i32s({1, 3, 4}));
  GgufWriter::Layout layout;
  const auto good = w.serialize(&layout);
  // Tensor "b" (3 floats) sits after "a" (8 floats): the data end there; padding follows.
  const std::size_t data_end = layout.data_start + 32 + 12;
  for (std::size_t n = 0; n < data_end; ++n) {
    std::vector<std::uint8_t> cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_THROW(GgufFile::from_bytes(std::move(cut)), lab::Error) << "prefix of " << n;
  }
  lab::Rng rng(7);
  for (int trial = 0; trial < 3000; ++trial) {
    auto bad = good;
    const int flips = 1 + static_cast<int>(rng.below(3));
    for (int k = 0; k < flips; ++k)
      bad[rng.below(bad.size())] = static_cast<std::uint8_t>(rng.below(256));
    try {
      const auto f = GgufFile::from_bytes(std::move(bad));
      for (const auto& t : f.tensors()) {
        const auto info = lab::ggml_type_info(t.type);
        if (info && info->can_dequantize) (void)f.dequantize(t);
      }
    } catch (const lab::Error&) {
    }
  }
}

TEST(GgufHostile, MissingFile) {
  try {
    GgufFile f("/nonexistent/model.gguf");
    ADD_FAILURE();
  } catch (const lab::Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot open '/nonexistent/model.gguf'"),
              std::string::npos);
  }
}

}  // namespace
