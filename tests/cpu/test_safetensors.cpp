// safetensors read/write (F32, F16, BF16, sharded), config.json, the HF directory export and
// its loader, and one test per class of hostile safetensors file.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/hf_config.hpp"
#include "common/hf_export.hpp"
#include "common/model_source.hpp"
#include "common/random.hpp"
#include "common/safetensors.hpp"

namespace {

namespace fs = std::filesystem;
using lab::SafetensorsFile;

lab::Tensor make(std::vector<std::int64_t> shape, float start) {
  lab::Tensor t;
  t.shape = std::move(shape);
  t.data.resize(static_cast<std::size_t>(t.numel()));
  for (std::size_t k = 0; k < t.data.size(); ++k) t.data[k] = start + 0.25f * static_cast<float>(k);
  return t;
}

// A file from a raw JSON header and a data buffer of `data_bytes` bytes.
std::vector<std::uint8_t> raw_file(const std::string& header, std::size_t data_bytes) {
  std::vector<std::uint8_t> out(8 + header.size() + data_bytes, 0);
  const std::uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, header.data(), header.size());
  return out;
}

void expect_rejected(std::vector<std::uint8_t> bytes, const std::string& needle) {
  try {
    SafetensorsFile::from_bytes(std::move(bytes), "hostile.safetensors");
    ADD_FAILURE() << "accepted; expected '" << needle << "'";
  } catch (const lab::Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("hostile.safetensors"), std::string::npos);
  }
}

TEST(Safetensors, RoundTripF32F16Bf16) {
  const auto a = make({2, 3}, -1.0f), b = make({4}, 2.0f);
  for (auto dtype : {lab::DType::FP32, lab::DType::FP16, lab::DType::BF16}) {
    const auto bytes = lab::serialize_safetensors({{"a", &a}, {"b", &b}}, dtype);
    std::uint64_t n;
    std::memcpy(&n, bytes.data(), 8);
    EXPECT_EQ((8 + n) % 8, 0u);  // padded with spaces
    const auto f = SafetensorsFile::from_bytes(bytes);
    EXPECT_EQ(f.metadata().at("format"), "pt");
    ASSERT_EQ(f.tensors().size(), 2u);
    EXPECT_EQ(f.to_tensor(*f.find("a")).data, a.data);  // quarters are exact in all three
    EXPECT_EQ(f.to_tensor(*f.find("b")).shape, b.shape);
  }
}

TEST(Safetensors, WritesAndMapsAFile) {
  const auto a = make({3, 2}, 0.5f);
  const auto path = fs::temp_directory_path() / "lab_test.safetensors";
  lab::write_safetensors(path.string(), {{"w", &a}}, lab::DType::FP32);
  const SafetensorsFile f(path.string());
  EXPECT_EQ(f.to_tensor(*f.find("w")).data, a.data);
  fs::remove(path);
}

TEST(Safetensors, AcceptsHeaderPaddingAndScalars) {
  expect_rejected(raw_file("{}", 4), "cover 0 bytes of a 4-byte");
  const auto ok = SafetensorsFile::from_bytes(
      raw_file(R"({"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}      )", 4));
  EXPECT_EQ(ok.to_tensor(ok.tensors()[0]).data.size(), 1u);
}

TEST(SafetensorsHostile, TooShort) {
  expect_rejected({1, 2, 3}, "shorter than the 8-byte header");
}

TEST(SafetensorsHostile, HeaderLengthPastEndOfFile) {
  auto b = raw_file("{}", 0);
  const std::uint64_t n = 1000;
  std::memcpy(b.data(), &n, 8);
  expect_rejected(b, "runs past the end of the file");
  const std::uint64_t huge = 1ull << 40;
  std::memcpy(b.data(), &huge, 8);
  expect_rejected(b, "exceeds 100 MB");
}

TEST(SafetensorsHostile, NotJson) {
  expect_rejected(raw_file("{\"a\": ", 0), "not valid JSON");
}

TEST(SafetensorsHostile, DuplicateNames) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                           R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                           8),
                  "duplicate tensor name 'a'");
}

TEST(SafetensorsHostile, UnknownDtype) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}})", 4),
                  "unknown dtype 'F12'");
}

TEST(SafetensorsHostile, BadShape) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4),
                  "negative");
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],)"
                           R"("data_offsets":[0,4]}})",
                           4),
                  "overflows");
}

TEST(SafetensorsHostile, SizeDisagreesWithShape) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4),
                  "shape and dtype need 8");
}

TEST(SafetensorsHostile, DataPastEndOfFile) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8),
                  "runs past the end of the file");
}

TEST(SafetensorsHostile, Overlap) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                           12),
                  "overlaps");
}

TEST(SafetensorsHostile, Gap) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
                  "gap in the data buffer");
}

TEST(SafetensorsHostile, MissingFields) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[1]}})", 4), "needs dtype, shape");
}

TEST(SafetensorsHostile, RandomByteFlips) {
  const auto a = make({3, 5}, 1.0f), b = make({7}, 0.0f);
  const auto good = lab::serialize_safetensors({{"a", &a}, {"b", &b}}, lab::DType::BF16);
  lab::Rng rng(3);
  for (int trial = 0; trial < 2000; ++trial) {
    auto bad = good;
    bad[rng.below(bad.size())] = static_cast<std::uint8_t>(rng.below(256));
    try {
      const auto f = SafetensorsFile::from_bytes(std::move(bad));
      for (const auto& t : f.tensors())
        if (t.dtype == "F32" || t.dtype == "F16" || t.dtype == "BF16") (void)f.to_tensor(t);
    } catch (const lab::Error&) {
    }
  }
  for (std::size_t n = 0; n < good.size(); ++n)
    EXPECT_THROW(SafetensorsFile::from_bytes({good.begin(), good.begin() + n}), lab::Error);
}

// --- config.json and HF directories ----------------------------------------------------------

TEST(HfConfig, RoundTripAndDefaults) {
  const auto c = lab::preset("smollm2-135m");
  const auto back = lab::config_from_hf_json(lab::hf_config_json(c));
  EXPECT_EQ(back.hidden_size, 576);
  EXPECT_EQ(back.num_kv_heads, 3);
  EXPECT_EQ(back.rope_theta, 100000.0f);
  EXPECT_TRUE(back.tie_word_embeddings);
  EXPECT_EQ(back.eos_token_id, 2);
  auto j = lab::hf_config_json(c);
  j.erase("head_dim");
  j.erase("num_key_value_heads");
  j["eos_token_id"] = {2, 0};
  const auto d = lab::config_from_hf_json(j);
  EXPECT_EQ(d.head_dim, 64);
  EXPECT_EQ(d.num_kv_heads, 9);
  EXPECT_EQ(d.eos_token_id, 2);
  j["rope_scaling"] = {{"type", "linear"}};
  EXPECT_THROW(lab::config_from_hf_json(j), lab::Error);
  EXPECT_THROW(lab::config_from_hf_json(nlohmann::json{{"model_type", "gpt2"}}), lab::Error);
}

TEST(HfDirectory, TinyExportsAndLoadsBackBitIdentical) {
  const auto dir = fs::temp_directory_path() / "lab_test_tiny_hf";
  fs::remove_all(dir);
  const auto tiny = lab::load_model("tiny", 11);
  lab::export_hf_directory(tiny, dir.string());
  const auto config = nlohmann::json::parse(std::ifstream(dir / "config.json"));
  EXPECT_EQ(config["architectures"][0], "LlamaForCausalLM");
  EXPECT_EQ(config["torch_dtype"], "float32");
  const SafetensorsFile st((dir / "model.safetensors").string());
  EXPECT_NE(st.find("lm_head.weight"), nullptr);  // tiny is not tied
  const auto back = lab::load_model(dir.string(), 0);
  for (const auto& [name, t] : tiny.weights.tensors)
    EXPECT_EQ(back.weights.at(name).data, t.data) << name;
  ASSERT_TRUE(back.tokenizer);
  EXPECT_EQ(back.tokenizer->encode("héllo 12"), tiny.tokenizer->encode("héllo 12"));
  EXPECT_EQ(back.tokenizer->eos_id(), lab::ByteTokenizer::kEos);
  fs::remove_all(dir);
}

TEST(HfDirectory, ShardedIndexAndBf16) {
  const auto dir = fs::temp_directory_path() / "lab_test_sharded_hf";
  fs::remove_all(dir);
  auto tiny = lab::load_model("tiny", 12);
  lab::export_hf_directory(tiny, dir.string(), lab::DType::BF16);
  // Split model.safetensors into two shards with an index, as the hub does for big models.
  const SafetensorsFile whole((dir / "model.safetensors").string());
  std::vector<lab::Tensor> tensors;
  for (const auto& t : whole.tensors()) tensors.push_back(whole.to_tensor(t));
  std::vector<std::pair<std::string, const lab::Tensor*>> first, second;
  nlohmann::json map;
  for (std::size_t k = 0; k < tensors.size(); ++k) {
    const auto& name = whole.tensors()[k].name;
    (k % 2 ? second : first).emplace_back(name, &tensors[k]);
    map[name] = k % 2 ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors";
  }
  lab::write_safetensors((dir / "model-00001-of-00002.safetensors").string(), first,
                         lab::DType::BF16);
  lab::write_safetensors((dir / "model-00002-of-00002.safetensors").string(), second,
                         lab::DType::BF16);
  fs::remove(dir / "model.safetensors");
  std::ofstream(dir / "model.safetensors.index.json") << nlohmann::json{{"weight_map", map}}.dump();
  const auto back = lab::load_model(dir.string(), 0);
  for (const auto& [name, t] : tiny.weights.tensors) {
    const auto& got = back.weights.at(name).data;
    for (std::size_t k = 0; k < t.data.size(); ++k)
      ASSERT_NEAR(got[k], t.data[k], 0x1p-8f * std::fabs(t.data[k])) << name;
  }
  // A shard that goes missing is named.
  fs::remove(dir / "model-00002-of-00002.safetensors");
  EXPECT_THROW(lab::load_model(dir.string(), 0), lab::Error);
  fs::remove_all(dir);
}

TEST(HfDirectory, RejectsMissingAndMisshapenTensors) {
  const auto dir = fs::temp_directory_path() / "lab_test_bad_hf";
  fs::remove_all(dir);
  auto tiny = lab::load_model("tiny", 13);
  lab::export_hf_directory(tiny, dir.string());
  auto config = nlohmann::json::parse(std::ifstream(dir / "config.json"));
  config["intermediate_size"] = 160;
  std::ofstream(dir / "config.json") << config.dump();
  try {
    lab::load_model(dir.string(), 0);
    ADD_FAILURE();
  } catch (const lab::Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not have the shape config.json implies"),
              std::string::npos)
        << e.what();
  }
  config["intermediate_size"] = 176;
  config["num_hidden_layers"] = 3;
  std::ofstream(dir / "config.json") << config.dump();
  try {
    lab::load_model(dir.string(), 0);
    ADD_FAILURE();
  } catch (const lab::Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing tensor 'model.layers.2."), std::string::npos)
        << e.what();
  }
  fs::remove_all(dir);
}

}  // namespace
