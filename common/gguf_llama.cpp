#include "common/gguf_llama.hpp"

#include <cstring>
#include <filesystem>
#include <map>

#include "common/bpe_tokenizer.hpp"
#include "common/error.hpp"

namespace lab {

namespace {

[[noreturn]] void fail(const GgufFile& f, const std::string& problem) {
  throw Error("GGUF '" + f.name() + "': " + problem);
}

int int_key(const GgufFile& f, const std::string& key, std::optional<std::int64_t> fallback = {}) {
  auto v = f.find_int(key);
  if (!v) {
    if (!fallback) fail(f, "required key '" + key + "' is missing");
    v = fallback;
  }
  if (*v <= 0 || *v > (1 << 30))
    fail(f, "key '" + key + "' = " + std::to_string(*v) + " is out of range");
  return static_cast<int>(*v);
}

std::string shape_text(const std::vector<std::int64_t>& s) {
  std::string t;
  for (auto d : s) t += (t.empty() ? "" : ", ") + std::to_string(d);
  return "[" + t + "]";
}

}  // namespace

ModelConfig config_from_gguf(const GgufFile& f) {
  const auto arch = f.find_string("general.architecture");
  if (!arch) fail(f, "required key 'general.architecture' is missing");
  if (*arch != "llama") fail(f, "architecture '" + *arch + "' is not supported (only llama)");
  ModelConfig c;
  c.name = std::filesystem::path(f.name()).stem().string();
  c.hidden_size = int_key(f, "llama.embedding_length");
  c.num_layers = int_key(f, "llama.block_count");
  c.intermediate_size = int_key(f, "llama.feed_forward_length");
  c.num_heads = int_key(f, "llama.attention.head_count");
  c.num_kv_heads = int_key(f, "llama.attention.head_count_kv", c.num_heads);
  c.max_seq_len = int_key(f, "llama.context_length");
  c.head_dim = int_key(f, "llama.attention.key_length", c.hidden_size / c.num_heads);
  if (int_key(f, "llama.attention.value_length", c.head_dim) != c.head_dim)
    fail(f, "value_length differs from key_length (not supported)");
  if (int_key(f, "llama.rope.dimension_count", c.head_dim) != c.head_dim)
    fail(f,
         "llama.rope.dimension_count differs from the head width (partial RoPE is not supported)");
  const auto scaling = f.find_string("llama.rope.scaling.type");
  if (scaling && *scaling != "none") fail(f, "RoPE scaling '" + *scaling + "' is not supported");
  const auto eps = f.find_float("llama.attention.layer_norm_rms_epsilon");
  if (!eps) fail(f, "required key 'llama.attention.layer_norm_rms_epsilon' is missing");
  c.rms_norm_eps = static_cast<float>(*eps);
  c.rope_theta = static_cast<float>(f.find_float("llama.rope.freq_base").value_or(10000.0));

  // Vocabulary size: the key when the converter wrote it, else the token list, else the table.
  std::optional<std::int64_t> vocab = f.find_int("llama.vocab_size");
  if (!vocab)
    if (const GgufValue* tokens = f.find("tokenizer.ggml.tokens"))
      vocab = static_cast<std::int64_t>(tokens->array_size());
  if (!vocab)
    if (const GgufTensorInfo* e = f.find_tensor("token_embd.weight"); e && e->ne.size() == 2)
      vocab = static_cast<std::int64_t>(e->ne[1]);
  if (!vocab) fail(f, "cannot tell the vocabulary size");
  c.vocab_size = int_key(f, "llama.vocab_size", vocab);
  c.tie_word_embeddings = f.find_tensor("output.weight") == nullptr;
  auto token = [&](const char* key) {
    const auto v = f.find_int(key);
    return v && *v >= 0 && *v < c.vocab_size ? static_cast<int>(*v) : -1;
  };
  c.bos_token_id = token("tokenizer.ggml.bos_token_id");
  c.eos_token_id = token("tokenizer.ggml.eos_token_id");
  try {
    validate(c);
  } catch (const Error& e) {
    fail(f, std::string("model config: ") + e.what());
  }
  return c;
}

//! [unpermute]
void unpermute_qk_rows(std::span<const std::byte> gguf_rows, std::span<std::byte> hf_rows,
                       int n_heads, int head_dim, std::size_t row_bytes) {
  const std::size_t rows = static_cast<std::size_t>(n_heads) * head_dim;
  require(head_dim % 2 == 0 && gguf_rows.size() == rows * row_bytes &&
              hf_rows.size() == gguf_rows.size(),
          "unpermute_qk_rows: sizes do not match n_heads × head_dim rows");
  // llama.cpp's converter stored each head's rows in Meta's interleaved RoPE order (pairs
  // 2i, 2i+1); HF rotates pairs (i, i + d/2). Moving whole rows converts one into the other.
  const int half = head_dim / 2;
  for (int h = 0; h < n_heads; ++h)
    for (int i = 0; i < half; ++i)
      for (int c = 0; c < 2; ++c) {
        const std::size_t from = static_cast<std::size_t>(h) * head_dim + 2 * i + c;
        const std::size_t to = static_cast<std::size_t>(h) * head_dim + c * half + i;
        std::memcpy(hf_rows.data() + to * row_bytes, gguf_rows.data() + from * row_bytes,
                    row_bytes);
      }
}
//! [unpermute]

void permute_qk_rows(std::span<const std::byte> hf_rows, std::span<std::byte> gguf_rows,
                     int n_heads, int head_dim, std::size_t row_bytes) {
  const std::size_t rows = static_cast<std::size_t>(n_heads) * head_dim;
  require(
      head_dim % 2 == 0 && hf_rows.size() == rows * row_bytes && gguf_rows.size() == hf_rows.size(),
      "permute_qk_rows: sizes do not match n_heads × head_dim rows");
  const int half = head_dim / 2;
  for (int h = 0; h < n_heads; ++h)
    for (int i = 0; i < half; ++i)
      for (int c = 0; c < 2; ++c) {
        const std::size_t hf = static_cast<std::size_t>(h) * head_dim + c * half + i;
        const std::size_t gg = static_cast<std::size_t>(h) * head_dim + 2 * i + c;
        std::memcpy(gguf_rows.data() + gg * row_bytes, hf_rows.data() + hf * row_bytes, row_bytes);
      }
}

std::string hf_name_from_gguf(const std::string& g) {
  if (g == "token_embd.weight") return "model.embed_tokens.weight";
  if (g == "output_norm.weight") return "model.norm.weight";
  if (g == "output.weight") return "lm_head.weight";
  static const std::map<std::string, std::string> layer = {
      {"attn_norm.weight", "input_layernorm.weight"},
      {"attn_q.weight", "self_attn.q_proj.weight"},
      {"attn_k.weight", "self_attn.k_proj.weight"},
      {"attn_v.weight", "self_attn.v_proj.weight"},
      {"attn_output.weight", "self_attn.o_proj.weight"},
      {"ffn_norm.weight", "post_attention_layernorm.weight"},
      {"ffn_gate.weight", "mlp.gate_proj.weight"},
      {"ffn_up.weight", "mlp.up_proj.weight"},
      {"ffn_down.weight", "mlp.down_proj.weight"}};
  if (!g.starts_with("blk.")) return {};
  const auto dot = g.find('.', 4);
  if (dot == std::string::npos || dot == 4) return {};
  const std::string number = g.substr(4, dot - 4);
  if (number.size() > 6 || number.find_first_not_of("0123456789") != std::string::npos) return {};
  auto it = layer.find(g.substr(dot + 1));
  if (it == layer.end()) return {};
  return "model.layers." + std::to_string(std::stoi(number)) + "." + it->second;
}

ModelWeights weights_from_gguf(const GgufFile& f, const ModelConfig& config) {
  ModelWeights w;
  w.config = config;
  // Which GGUF tensor feeds each HF tensor.
  std::map<std::string, const GgufTensorInfo*> source;
  for (const auto& t : f.tensors()) {
    const std::string hf = hf_name_from_gguf(t.name);
    if (hf.empty()) {
      if (t.name == "rope_freqs.weight")
        fail(f, "rope_freqs (llama3 RoPE scaling) is not supported");
      continue;  // e.g. an unused extra tensor: ignored
    }
    source[hf] = &t;
  }
  // Each layer has 9 tensors: a block_count the file cannot hold is refused before the expected
  // list (9 names per layer) is built. Otherwise a corrupt count of 2 billion layers would have the
  // loader spend minutes listing names it can never find (found by fuzzing).
  if (static_cast<std::int64_t>(config.num_layers) * 9 > static_cast<std::int64_t>(source.size()))
    fail(f, "llama.block_count is " + std::to_string(config.num_layers) +
                " but the file holds only " + std::to_string(source.size()) +
                " model tensors (a layer has 9)");
  // Check every name and shape before dequantizing anything.
  const auto expected = expected_tensors(config);
  std::map<std::string, std::vector<std::int64_t>> expected_shape(expected.begin(), expected.end());
  for (const auto& [name, info] : source)
    if (!expected_shape.count(name))
      fail(f, "unexpected tensor '" + info->name + "' for this config");
  for (const auto& [name, shape] : expected) {
    auto it = source.find(name);
    if (it == source.end())
      fail(f, "missing tensor for '" + name + "' (the config has " +
                  std::to_string(config.num_layers) + " layers" +
                  (config.tie_word_embeddings ? "" : ", untied output") + ")");
    if (it->second->shape() != shape)
      fail(f, "tensor '" + it->second->name + "' has shape " + shape_text(it->second->shape()) +
                  ", the config needs " + shape_text(shape));
  }
  for (const auto& [name, shape] : expected) {
    const GgufTensorInfo* info = source.at(name);
    Tensor t;
    t.shape = shape;
    t.data = f.dequantize(*info);
    const bool is_q = name.ends_with("self_attn.q_proj.weight");
    const bool is_k = name.ends_with("self_attn.k_proj.weight");
    if (is_q || is_k) {
      std::vector<float> hf(t.data.size());
      const auto row_bytes = static_cast<std::size_t>(shape[1]) * sizeof(float);
      unpermute_qk_rows(std::as_bytes(std::span<const float>(t.data)),
                        std::as_writable_bytes(std::span<float>(hf)),
                        is_q ? config.num_heads : config.num_kv_heads, config.head_dim, row_bytes);
      t.data = std::move(hf);
    }
    w.tensors.emplace(name, std::move(t));
  }
  try {
    validate(w);
  } catch (const Error& e) {
    fail(f, e.what());
  }
  return w;
}

GgufWriter llama_gguf_writer(const LoadedModel& model, GgmlType matrix_type) {
  require(
      matrix_type == GgmlType::F32 || matrix_type == GgmlType::F16 || matrix_type == GgmlType::BF16,
      "llama_gguf_writer: matrices can be stored as F32, F16 or BF16");
  const ModelWeights& w = model.weights;
  const ModelConfig& c = w.config;
  validate(w);
  GgufWriter g;
  g.add("general.architecture", GgufValue::of_string("llama"));
  g.add("general.name", GgufValue::of_string(c.name));
  g.add("general.alignment", GgufValue::of_u32(32));
  g.add("llama.context_length", GgufValue::of_u32(static_cast<std::uint32_t>(c.max_seq_len)));
  g.add("llama.embedding_length", GgufValue::of_u32(static_cast<std::uint32_t>(c.hidden_size)));
  g.add("llama.block_count", GgufValue::of_u32(static_cast<std::uint32_t>(c.num_layers)));
  g.add("llama.feed_forward_length",
        GgufValue::of_u32(static_cast<std::uint32_t>(c.intermediate_size)));
  g.add("llama.attention.head_count", GgufValue::of_u32(static_cast<std::uint32_t>(c.num_heads)));
  g.add("llama.attention.head_count_kv",
        GgufValue::of_u32(static_cast<std::uint32_t>(c.num_kv_heads)));
  g.add("llama.attention.key_length", GgufValue::of_u32(static_cast<std::uint32_t>(c.head_dim)));
  g.add("llama.rope.dimension_count", GgufValue::of_u32(static_cast<std::uint32_t>(c.head_dim)));
  g.add("llama.rope.freq_base", GgufValue::of_f32(c.rope_theta));
  g.add("llama.attention.layer_norm_rms_epsilon", GgufValue::of_f32(c.rms_norm_eps));
  g.add("llama.vocab_size", GgufValue::of_u32(static_cast<std::uint32_t>(c.vocab_size)));

  std::shared_ptr<const BpeTokenizer> bpe =
      std::dynamic_pointer_cast<const BpeTokenizer>(model.tokenizer);
  if (!bpe && dynamic_cast<const ByteTokenizer*>(model.tokenizer.get()))
    bpe = std::make_shared<BpeTokenizer>(byte_tokenizer_vocabulary());
  if (bpe) {
    const BpeVocabulary& v = bpe->vocabulary();
    g.add("tokenizer.ggml.model", GgufValue::of_string("gpt2"));
    // kNone has no GGUF name; without merges every split gives the same ids, so "gpt2" is exact.
    g.add("tokenizer.ggml.pre",
          GgufValue::of_string(v.pre_tokenizer == PreTokenizer::kSmolLm ? "smollm" : "gpt2"));
    g.add("tokenizer.ggml.tokens", GgufValue::of_strings(v.tokens));
    std::vector<std::int64_t> types(v.tokens.size(), 1);
    for (int id : v.special_ids) types[static_cast<std::size_t>(id)] = 3;
    g.add("tokenizer.ggml.token_type", GgufValue::of_i32s(types));
    std::vector<std::string> merges;
    for (const auto& [l, r] : v.merges) merges.push_back(l + " " + r);
    g.add("tokenizer.ggml.merges", GgufValue::of_strings(merges));
    if (v.bos_id >= 0)
      g.add("tokenizer.ggml.bos_token_id", GgufValue::of_u32(static_cast<std::uint32_t>(v.bos_id)));
    if (v.eos_id >= 0)
      g.add("tokenizer.ggml.eos_token_id", GgufValue::of_u32(static_cast<std::uint32_t>(v.eos_id)));
    g.add("tokenizer.ggml.add_bos_token", GgufValue::of_bool(v.add_bos));
    if (!v.chat_template.empty())
      g.add("tokenizer.chat_template", GgufValue::of_string(v.chat_template));
  }

  // HF name → GGUF name, the reverse of hf_name_from_gguf().
  auto gguf_name = [&](const std::string& hf) {
    if (hf == "model.embed_tokens.weight") return std::string("token_embd.weight");
    if (hf == "model.norm.weight") return std::string("output_norm.weight");
    if (hf == "lm_head.weight") return std::string("output.weight");
    for (int l = 0; l < c.num_layers; ++l)
      for (const char* suffix : {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                                 "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"}) {
        const std::string g_name = "blk." + std::to_string(l) + "." + suffix + ".weight";
        if (hf_name_from_gguf(g_name) == hf) return g_name;
      }
    throw Error("llama_gguf_writer: no GGUF name for '" + hf + "'");
  };
  for (const auto& [name, shape] : expected_tensors(c)) {
    const Tensor& t = w.at(name);
    std::vector<float> values = t.data;
    const bool is_q = name.ends_with("self_attn.q_proj.weight");
    const bool is_k = name.ends_with("self_attn.k_proj.weight");
    if (is_q || is_k)
      permute_qk_rows(std::as_bytes(std::span<const float>(t.data)),
                      std::as_writable_bytes(std::span<float>(values)),
                      is_q ? c.num_heads : c.num_kv_heads, c.head_dim,
                      static_cast<std::size_t>(shape[1]) * sizeof(float));
    std::vector<std::uint64_t> ne(shape.rbegin(), shape.rend());
    const GgmlType type = shape.size() == 2 ? matrix_type : GgmlType::F32;
    if (type == GgmlType::F32) {
      g.add_f32(gguf_name(name), ne, values);
      continue;
    }
    std::vector<std::uint8_t> data(values.size() * 2);
    for (std::size_t i = 0; i < values.size(); ++i) {
      const std::uint16_t h =
          type == GgmlType::F16 ? fp32_to_fp16(values[i]) : fp32_to_bf16(values[i]);
      std::memcpy(data.data() + 2 * i, &h, 2);
    }
    g.add_tensor(gguf_name(name), static_cast<std::uint32_t>(type), ne, std::move(data));
  }
  return g;
}

LoadedModel load_gguf_model(const std::string& path) {
  GgufFile file(path);
  LoadedModel m;
  const ModelConfig config = config_from_gguf(file);
  m.weights = weights_from_gguf(file, config);
  if (file.find("tokenizer.ggml.model") != nullptr) m.tokenizer = BpeTokenizer::from_gguf(file);
  if (m.tokenizer && m.tokenizer->vocab_size() != config.vocab_size)
    fail(file, "the tokenizer has " + std::to_string(m.tokenizer->vocab_size()) +
                   " tokens, the model " + std::to_string(config.vocab_size));
  // "GGUF v3, 272 tensors: 210 Q4_1, 61 F32, 1 Q8_0"
  std::map<std::string, int> types;
  for (const auto& t : file.tensors()) ++types[ggml_type_name(t.type)];
  std::string summary;
  for (const auto& [type, count] : types)
    summary += (summary.empty() ? "" : ", ") + std::to_string(count) + " " + type;
  m.source = path + " (GGUF v" + std::to_string(file.version()) + ", " +
             std::to_string(file.tensors().size()) + " tensors: " + summary + ")";
  return m;
}

}  // namespace lab
