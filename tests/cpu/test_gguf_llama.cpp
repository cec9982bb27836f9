// A llama GGUF → HF-layout weights: the Q/K un-permutation against llama.cpp's own permutation
// (written here as convert_hf_to_gguf.py does it), config from llama.* keys of any integer width,
// tied embeddings, and the shape/missing-tensor checks.
#include <gtest/gtest.h>

#include <chrono>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/gguf_llama.hpp"
#include "common/model_config.hpp"
#include "common/weights.hpp"

namespace {

using lab::GgufFile;
using lab::GgufValue;

// llama.cpp convert_hf_to_gguf.py, LlamaModel.permute:
//   w.reshape(n_head, 2, dim // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
// Row (h, c, i) of the HF matrix (c ∈ {0,1}: which half, i < d/2) lands at row (h, i, c).
std::vector<float> llama_cpp_permute(const std::vector<float>& w, int n_head, int rows, int cols) {
  const int half = rows / n_head / 2;
  std::vector<float> out(w.size());
  for (int h = 0; h < n_head; ++h)
    for (int c = 0; c < 2; ++c)
      for (int i = 0; i < half; ++i) {
        const int src_row = (h * 2 + c) * half + i;  // index in (n_head, 2, half)
        const int dst_row = (h * half + i) * 2 + c;  // index in (n_head, half, 2)
        std::memcpy(&out[static_cast<std::size_t>(dst_row) * cols],
                    &w[static_cast<std::size_t>(src_row) * cols], sizeof(float) * cols);
      }
  return out;
}

std::vector<float> unpermute(const std::vector<float>& w, int n_head, int head_dim) {
  std::vector<float> out(w.size());
  const std::size_t cols = w.size() / (static_cast<std::size_t>(n_head) * head_dim);
  lab::unpermute_qk_rows(std::as_bytes(std::span<const float>(w)),
                         std::as_writable_bytes(std::span<float>(out)), n_head, head_dim,
                         cols * sizeof(float));
  return out;
}

TEST(GgufLlama, UnpermuteUndoesLlamaCppPermutation) {
  for (auto [n_head, head_dim, cols] : {std::tuple{9, 64, 5}, {3, 64, 2}, {4, 16, 7}, {1, 2, 1}}) {
    std::vector<float> w(static_cast<std::size_t>(n_head) * head_dim * cols);
    for (std::size_t k = 0; k < w.size(); ++k) w[k] = static_cast<float>(k);
    const auto gguf = llama_cpp_permute(w, n_head, n_head * head_dim, cols);
    if (head_dim > 2) {
      EXPECT_NE(gguf, w);  // d = 2 has one pair: nothing moves
    }
    EXPECT_EQ(unpermute(gguf, n_head, head_dim), w) << n_head << "x" << head_dim;
    // The library's own permute (used by its GGUF writer) is llama.cpp's.
    std::vector<float> ours(w.size());
    lab::permute_qk_rows(std::as_bytes(std::span<const float>(w)),
                         std::as_writable_bytes(std::span<float>(ours)), n_head, head_dim,
                         cols * sizeof(float));
    EXPECT_EQ(ours, gguf);
  }
}

TEST(GgufLlama, UnpermuteRowMapping) {
  // reference/model_formats.md §4.2: GGUF_row[h·d + 2i + c] == HF_row[h·d + c·d/2 + i].
  const int d = 8, heads = 2;
  std::vector<float> gguf(heads * d);
  for (int r = 0; r < heads * d; ++r) gguf[r] = static_cast<float>(r);
  const auto hf = unpermute(gguf, heads, d);
  for (int h = 0; h < heads; ++h)
    for (int i = 0; i < d / 2; ++i)
      for (int c = 0; c < 2; ++c) EXPECT_EQ(hf[h * d + c * d / 2 + i], gguf[h * d + 2 * i + c]);
}

// tiny's weights written as llama.cpp would (names, permuted Q/K, llama.* keys).
lab::LoadedModel tiny_model() {
  lab::LoadedModel m;
  m.weights = lab::random_weights(lab::preset("tiny"), 5);
  m.tokenizer = std::make_shared<lab::ByteTokenizer>();
  return m;
}

TEST(GgufLlama, LoadsWhatTheWriterWroteBitForBit) {
  const auto m = tiny_model();
  const auto f = GgufFile::from_bytes(lab::llama_gguf_writer(m).serialize(), "tiny.gguf");
  const auto config = lab::config_from_gguf(f);
  EXPECT_EQ(config.hidden_size, 64);
  EXPECT_EQ(config.num_kv_heads, 2);
  EXPECT_EQ(config.vocab_size, 258);
  EXPECT_FALSE(config.tie_word_embeddings);  // output.weight is present
  const auto w = lab::weights_from_gguf(f, config);
  for (const auto& [name, t] : m.weights.tensors) EXPECT_EQ(w.at(name).data, t.data) << name;
  // The file itself holds Q rows in llama.cpp's order, not HF's.
  const auto* q = f.find_tensor("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  const auto& hf_q = m.weights.at("model.layers.0.self_attn.q_proj.weight");
  EXPECT_EQ(f.dequantize(*q), llama_cpp_permute(hf_q.data, 4, 64, 64));
}

TEST(GgufLlama, F16AndBf16MatricesRoundToTheirType) {
  const auto m = tiny_model();
  for (auto type : {lab::GgmlType::F16, lab::GgmlType::BF16}) {
    const auto f = GgufFile::from_bytes(lab::llama_gguf_writer(m, type).serialize());
    const auto w = lab::weights_from_gguf(f, lab::config_from_gguf(f));
    const auto& want = m.weights.at("model.layers.1.mlp.down_proj.weight").data;
    const auto& got = w.at("model.layers.1.mlp.down_proj.weight").data;
    const float u = type == lab::GgmlType::F16 ? 0x1p-11f : 0x1p-8f;  // unit roundoff
    for (std::size_t k = 0; k < want.size(); ++k)
      ASSERT_NEAR(got[k], want[k], u * std::fabs(want[k]) + 1e-7f) << k;
  }
}

TEST(GgufLlama, TiedEmbeddingsWhenOutputIsAbsent) {
  auto m = tiny_model();
  m.weights.config.tie_word_embeddings = true;
  m.weights.tensors.erase("lm_head.weight");
  const auto f = GgufFile::from_bytes(lab::llama_gguf_writer(m).serialize());
  EXPECT_EQ(f.find_tensor("output.weight"), nullptr);
  const auto config = lab::config_from_gguf(f);
  EXPECT_TRUE(config.tie_word_embeddings);
  const auto w = lab::weights_from_gguf(f, config);
  EXPECT_EQ(&w.output_projection(), &w.at("model.embed_tokens.weight"));
}

// Rewrites the keys of a tiny GGUF through `edit`, keeping the tensors.
std::vector<std::uint8_t> with_keys(
    const std::function<void(std::vector<std::pair<std::string, GgufValue>>&)>& edit,
    const std::function<bool(const std::string&)>& keep_tensor = {}) {
  const auto m = tiny_model();
  const auto source = GgufFile::from_bytes(lab::llama_gguf_writer(m).serialize());
  auto kvs = source.metadata();
  edit(kvs);
  lab::GgufWriter w;
  for (auto& [k, v] : kvs) w.add(k, v);
  for (const auto& t : source.tensors()) {
    if (keep_tensor && !keep_tensor(t.name)) continue;
    const auto bytes = source.tensor_bytes(t);
    w.add_tensor(t.name, t.type, t.ne, {bytes.begin(), bytes.end()});
  }
  return w.serialize();
}

TEST(GgufLlama, IntegerKeysOfAnyWidth) {
  const auto bytes = with_keys([](auto& kvs) {
    for (auto& [k, v] : kvs) {
      if (k == "llama.block_count") {
        v.type = lab::GgufValueType::UINT8;  // llama.cpp writes UINT32; the spec says UINT64
      } else if (k == "llama.embedding_length") {
        v.type = lab::GgufValueType::UINT64;
      } else if (k == "llama.attention.head_count") {
        v.type = lab::GgufValueType::INT16;
      }
    }
  });
  const auto f = GgufFile::from_bytes(bytes);
  const auto c = lab::config_from_gguf(f);
  EXPECT_EQ(c.num_layers, 2);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.num_heads, 4);
}

void expect_error(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no error; expected '" << needle << "'";
  } catch (const lab::Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(GgufLlama, RejectsAnotherArchitecture) {
  const auto bytes = with_keys([](auto& kvs) {
    for (auto& [k, v] : kvs)
      if (k == "general.architecture") v = GgufValue::of_string("gemma3");
  });
  const auto f = GgufFile::from_bytes(bytes);
  expect_error([&] { lab::config_from_gguf(f); }, "architecture 'gemma3' is not supported");
}

TEST(GgufLlama, RejectsMissingRequiredKey) {
  const auto bytes = with_keys([](auto& kvs) {
    std::erase_if(kvs, [](const auto& kv) { return kv.first == "llama.block_count"; });
  });
  const auto f = GgufFile::from_bytes(bytes);
  expect_error([&] { lab::config_from_gguf(f); }, "required key 'llama.block_count' is missing");
}

TEST(GgufLlama, RejectsShapesThatDisagreeWithTheConfig) {
  const auto bytes = with_keys([](auto& kvs) {
    for (auto& [k, v] : kvs)
      if (k == "llama.feed_forward_length") v = GgufValue::of_u32(160);
  });
  const auto f = GgufFile::from_bytes(bytes);
  expect_error([&] { lab::weights_from_gguf(f, lab::config_from_gguf(f)); },
               "has shape [176, 64], the config needs [160, 64]");
}

TEST(GgufLlama, RejectsMissingTensors) {
  const auto bytes = with_keys(
      [](auto&) {}, [](const std::string& name) { return name != "blk.1.attn_v.weight"; });
  const auto f = GgufFile::from_bytes(bytes);
  expect_error([&] { lab::weights_from_gguf(f, lab::config_from_gguf(f)); },
               "missing tensor for 'model.layers.1.self_attn.v_proj.weight'");
}

TEST(GgufLlama, RejectsUnexpectedLayers) {
  const auto bytes = with_keys([](auto& kvs) {
    for (auto& [k, v] : kvs)
      if (k == "llama.block_count") v = GgufValue::of_u32(1);
  });
  const auto f = GgufFile::from_bytes(bytes);
  expect_error([&] { lab::weights_from_gguf(f, lab::config_from_gguf(f)); },
               "unexpected tensor 'blk.1.");
}

// Found by fuzzing: a huge block_count had the loader list 9 tensor names for every layer
// (a libFuzzer timeout). It is refused at once because the file cannot hold that many layers.
TEST(GgufLlama, RejectsABlockCountTheFileCannotHold) {
  const auto bytes = with_keys([](auto& kvs) {
    for (auto& [k, v] : kvs)
      if (k == "llama.block_count") v = GgufValue::of_u32(1000000u);
  });
  const auto f = GgufFile::from_bytes(bytes);
  const auto start = std::chrono::steady_clock::now();
  expect_error([&] { lab::weights_from_gguf(f, lab::config_from_gguf(f)); },
               "llama.block_count is 1000000 but the file holds only 21 model tensors");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 1.0);
}

TEST(GgufLlama, TensorNames) {
  EXPECT_EQ(lab::hf_name_from_gguf("blk.12.ffn_down.weight"),
            "model.layers.12.mlp.down_proj.weight");
  EXPECT_EQ(lab::hf_name_from_gguf("token_embd.weight"), "model.embed_tokens.weight");
  EXPECT_EQ(lab::hf_name_from_gguf("blk.x.attn_q.weight"), "");
  EXPECT_EQ(lab::hf_name_from_gguf("blk.1.attn_q.bias"), "");
}

}  // namespace
