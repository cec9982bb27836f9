#include "common/tensor_parallel.hpp"

#include "common/error.hpp"

namespace lab {

void validate_tensor_parallel(const ModelConfig& c, int world_size) {
  validate(c);
  const std::string n = std::to_string(world_size);
  require(world_size >= 1, "tensor parallelism needs at least 1 rank, got " + n);
  require(c.num_heads % world_size == 0, "num_heads (" + std::to_string(c.num_heads) +
                                             ") does not split over " + n +
                                             " ranks: each rank must own whole query heads");
  require(c.intermediate_size % world_size == 0,
          "intermediate_size (" + std::to_string(c.intermediate_size) + ") does not split over " +
              n + " ranks: each rank must own as many FFN columns as the others");
  if (c.num_kv_heads >= world_size) {
    require(c.num_kv_heads % world_size == 0,
            "num_kv_heads (" + std::to_string(c.num_kv_heads) + ") does not split over " + n +
                " ranks: each rank must own whole key/value heads");
  } else {
    // Fewer KV heads than ranks: replicate each on N / Hkv ranks; a rank's H / N query heads must
    // then all read the same KV head, which holds exactly when Hkv divides N.
    require(world_size % c.num_kv_heads == 0,
            "num_kv_heads (" + std::to_string(c.num_kv_heads) + ") is smaller than the " + n +
                " ranks and does not divide it: a KV head cannot be replicated evenly");
  }
}

TensorParallelShard tensor_parallel_shard(const ModelConfig& c, int world_size, int rank) {
  validate_tensor_parallel(c, world_size);
  require(rank >= 0 && rank < world_size,
          "rank " + std::to_string(rank) + " is outside 0.." + std::to_string(world_size - 1));
  TensorParallelShard s;
  s.rank = rank;
  s.world_size = world_size;
  s.q_heads = c.num_heads / world_size;
  s.first_q_head = rank * s.q_heads;
  if (c.num_kv_heads >= world_size) {
    s.kv_heads = c.num_kv_heads / world_size;
    s.first_kv_head = rank * s.kv_heads;
  } else {
    s.kv_heads = 1;
    s.first_kv_head = s.first_q_head / c.group_size();  // the one KV head its queries read
    s.kv_replicated = true;
  }
  s.ffn = c.intermediate_size / world_size;
  s.first_ffn = rank * s.ffn;
  return s;
}

std::vector<float> slice_rows(const Tensor& t, std::int64_t first, std::int64_t count) {
  require(first >= 0 && count >= 0 && first + count <= t.rows(), "slice_rows: rows out of range");
  const auto begin = t.data.begin() + first * t.cols();
  return {begin, begin + count * t.cols()};
}

std::vector<float> slice_columns(const Tensor& t, std::int64_t first, std::int64_t count) {
  require(first >= 0 && count >= 0 && first + count <= t.cols(),
          "slice_columns: columns out of range");
  std::vector<float> out;
  out.reserve(static_cast<std::size_t>(t.rows() * count));
  for (std::int64_t r = 0; r < t.rows(); ++r) {
    const auto row = t.data.begin() + r * t.cols() + first;
    out.insert(out.end(), row, row + count);
  }
  return out;
}

LayerShard shard_layer(const ModelWeights& w, int layer, const TensorParallelShard& s) {
  const ModelConfig& c = w.config;
  const std::int64_t d = c.head_dim;
  auto t = [&](const char* suffix) -> const Tensor& {
    return w.at(layer_tensor_name(layer, suffix));
  };
  auto append = [](std::vector<float>& to, const std::vector<float>& from) {
    to.insert(to.end(), from.begin(), from.end());
  };
  LayerShard out;
  // Column-parallel: whole heads are whole blocks of head_dim rows.
  out.w_qkv = slice_rows(t("self_attn.q_proj.weight"), s.first_q_head * d, s.q_heads * d);
  append(out.w_qkv, slice_rows(t("self_attn.k_proj.weight"), s.first_kv_head * d, s.kv_heads * d));
  append(out.w_qkv, slice_rows(t("self_attn.v_proj.weight"), s.first_kv_head * d, s.kv_heads * d));
  // Row-parallel: o_proj's input features are the concatenated heads.
  out.wo = slice_columns(t("self_attn.o_proj.weight"), s.first_q_head * d, s.q_heads * d);
  out.w_gate_up = slice_rows(t("mlp.gate_proj.weight"), s.first_ffn, s.ffn);
  append(out.w_gate_up, slice_rows(t("mlp.up_proj.weight"), s.first_ffn, s.ffn));
  out.w_down = slice_columns(t("mlp.down_proj.weight"), s.first_ffn, s.ffn);
  return out;
}

std::string describe(const TensorParallelShard& s) {
  std::string text = "rank " + std::to_string(s.rank) + " of " + std::to_string(s.world_size);
  if (s.q_heads == 1)
    text += ": q head " + std::to_string(s.first_q_head);
  else
    text += ": q heads " + std::to_string(s.first_q_head) + ".." +
            std::to_string(s.first_q_head + s.q_heads - 1);
  if (s.kv_heads == 1)
    text += ", kv head " + std::to_string(s.first_kv_head);
  else
    text += ", kv heads " + std::to_string(s.first_kv_head) + ".." +
            std::to_string(s.first_kv_head + s.kv_heads - 1);
  if (s.kv_replicated) text += " (replicated)";
  return text + ", FFN columns " + std::to_string(s.first_ffn) + ".." +
         std::to_string(s.first_ffn + s.ffn - 1);
}

}  // namespace lab
