#include "common/weights.hpp"

#include <cmath>
#include <numeric>

#include "common/error.hpp"
#include "common/random.hpp"

namespace lab {

std::int64_t Tensor::numel() const {
  return std::accumulate(shape.begin(), shape.end(), std::int64_t{1}, std::multiplies<>());
}

std::int64_t Tensor::rows() const {
  require(shape.size() == 2, "tensor is not 2-D");
  return shape[0];
}

std::int64_t Tensor::cols() const {
  require(shape.size() == 2, "tensor is not 2-D");
  return shape[1];
}

const Tensor& ModelWeights::at(const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) throw Error("missing tensor '" + name + "'");
  return it->second;
}

const Tensor& ModelWeights::output_projection() const {
  return at(config.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight");
}

std::string layer_tensor_name(int layer, const std::string& suffix) {
  return "model.layers." + std::to_string(layer) + "." + suffix;
}

std::vector<std::pair<std::string, std::vector<std::int64_t>>> expected_tensors(
    const ModelConfig& c) {
  const std::int64_t D = c.hidden_size, F = c.intermediate_size, V = c.vocab_size;
  const std::int64_t Q = c.q_dim(), KV = c.kv_dim();
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> out;
  out.push_back({"model.embed_tokens.weight", {V, D}});
  for (int l = 0; l < c.num_layers; ++l) {
    out.push_back({layer_tensor_name(l, "input_layernorm.weight"), {D}});
    out.push_back({layer_tensor_name(l, "self_attn.q_proj.weight"), {Q, D}});
    out.push_back({layer_tensor_name(l, "self_attn.k_proj.weight"), {KV, D}});
    out.push_back({layer_tensor_name(l, "self_attn.v_proj.weight"), {KV, D}});
    out.push_back({layer_tensor_name(l, "self_attn.o_proj.weight"), {D, Q}});
    out.push_back({layer_tensor_name(l, "post_attention_layernorm.weight"), {D}});
    out.push_back({layer_tensor_name(l, "mlp.gate_proj.weight"), {F, D}});
    out.push_back({layer_tensor_name(l, "mlp.up_proj.weight"), {F, D}});
    out.push_back({layer_tensor_name(l, "mlp.down_proj.weight"), {D, F}});
  }
  out.push_back({"model.norm.weight", {D}});
  if (!c.tie_word_embeddings) out.push_back({"lm_head.weight", {V, D}});
  return out;
}

void validate(const ModelWeights& w) {
  validate(w.config);
  const auto expected = expected_tensors(w.config);
  for (const auto& [name, shape] : expected) {
    const Tensor& t = w.at(name);
    if (t.shape != shape) {
      std::string got, want;
      for (auto d : t.shape) got += (got.empty() ? "" : ", ") + std::to_string(d);
      for (auto d : shape) want += (want.empty() ? "" : ", ") + std::to_string(d);
      throw Error("tensor '" + name + "' has shape [" + got + "], the config needs [" + want + "]");
    }
    if (static_cast<std::int64_t>(t.data.size()) != t.numel())
      throw Error("tensor '" + name + "' holds " + std::to_string(t.data.size()) +
                  " values, its shape needs " + std::to_string(t.numel()));
    for (float v : t.data)
      if (!std::isfinite(v)) throw Error("tensor '" + name + "' contains NaN or Inf");
  }
  if (w.tensors.size() != expected.size()) {
    for (const auto& [name, tensor] : w.tensors) {
      bool known = false;
      for (const auto& e : expected) known = known || e.first == name;
      if (!known) throw Error("unexpected tensor '" + name + "' for this config");
    }
  }
}

ModelWeights random_weights(const ModelConfig& config, std::uint64_t seed, double init_scale) {
  validate(config);
  ModelWeights w;
  w.config = config;
  Rng rng(seed);
  for (const auto& [name, shape] : expected_tensors(config)) {
    Tensor t;
    t.shape = shape;
    t.data.resize(static_cast<std::size_t>(t.numel()));
    const bool is_norm = shape.size() == 1;
    const bool is_embedding = name == "model.embed_tokens.weight";
    const double std_dev =
        is_embedding ? 1.0 : init_scale / std::sqrt(static_cast<double>(shape.back()));
    for (float& v : t.data)
      v = static_cast<float>(is_norm ? 1.0 + 0.1 * rng.normal() : std_dev * rng.normal());
    w.tensors.emplace(name, std::move(t));
  }
  return w;
}

}  // namespace lab
