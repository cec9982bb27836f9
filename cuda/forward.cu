// The teacher-forced forward on the GPU. The code follows cpu_reference/transformer.cpp line for
// line, so that a difference in the logits can only come from a kernel.
#include <cmath>
#include <functional>

#include "common/error.hpp"
#include "cuda/buffer.hpp"
#include "cuda/check.cuh"
#include "cuda/device.hpp"
#include "cuda/forward.hpp"
#include "cuda/resources.hpp"

namespace lab::cuda {

namespace {

DeviceBuffer<float> upload(const Tensor& t) {
  return DeviceBuffer<float>(std::span(t.data));
}

DeviceBuffer<bf16> upload_bf16(const DeviceBuffer<float>& fp32, cudaStream_t stream) {
  DeviceBuffer<bf16> out(fp32.size());
  to_bf16(fp32.get(), out.get(), static_cast<std::int64_t>(fp32.size()), stream);
  return out;
}

}  // namespace

struct TeacherForcedForward::Impl {
  struct Layer {
    DeviceBuffer<float> attn_norm, mlp_norm, wq, wk, wv, wo, w_gate, w_up, w_down;
    DeviceBuffer<bf16> wq16, wk16, wv16, wo16, w_gate16, w_up16, w_down16;  // bf16 backend only
  };
  ModelConfig config;
  MatmulBackend backend;
  int max_tokens = 0;
  Stream stream;
  CublasHandle cublas{stream.get()};
  DeviceBuffer<float> embed, final_norm, lm_head;  // lm_head empty when tied
  DeviceBuffer<bf16> lm_head16;
  std::vector<Layer> layers;
  DeviceBuffer<double> inv_freq;
  // Activations for up to max_tokens tokens.
  DeviceBuffer<int> tokens;
  DeviceBuffer<float> x, h, q, k, v, attn, scores, gate, up, act, logits;
  DeviceBuffer<bf16> scratch16;  // the bf16 copy of a GEMM input
  // Profiling: when set, called after each op with its cost-model name.
  std::function<void(const char*)> after_op;

  Impl(const ModelWeights& w, MatmulBackend b, int max_n) : config(w.config), backend(b) {
    validate(w);
    const ModelConfig& c = config;
    max_tokens = max_n > 0 ? max_n : c.max_seq_len;
    const bool use_bf16 = backend == MatmulBackend::CublasBF16;
    // Bytes needed: fp32 weights (+ bf16 copies) and the activations, the scores (H, n, n) first.
    const double n = max_tokens;
    const double activations = 4.0 * n *
                               (3.0 * c.hidden_size + 2.0 * c.q_dim() + 2.0 * c.kv_dim() +
                                3.0 * c.intermediate_size + c.vocab_size + c.num_heads * n);
    const double weights = static_cast<double>(c.parameter_count()) * (use_bf16 ? 6.0 : 4.0);
    require_device_memory(static_cast<std::size_t>(weights + activations),
                          "the model " + c.name + " (" + to_string(backend) + ", " +
                              std::to_string(max_tokens) + " tokens)");
    embed = upload(w.at("model.embed_tokens.weight"));
    final_norm = upload(w.at("model.norm.weight"));
    if (!c.tie_word_embeddings) lm_head = upload(w.at("lm_head.weight"));
    for (int l = 0; l < c.num_layers; ++l) {
      auto t = [&](const char* suffix) { return upload(w.at(layer_tensor_name(l, suffix))); };
      Layer layer{t("input_layernorm.weight"),
                  t("post_attention_layernorm.weight"),
                  t("self_attn.q_proj.weight"),
                  t("self_attn.k_proj.weight"),
                  t("self_attn.v_proj.weight"),
                  t("self_attn.o_proj.weight"),
                  t("mlp.gate_proj.weight"),
                  t("mlp.up_proj.weight"),
                  t("mlp.down_proj.weight"),
                  {},
                  {},
                  {},
                  {},
                  {},
                  {},
                  {}};
      if (use_bf16) {
        const cudaStream_t s = stream.get();
        layer.wq16 = upload_bf16(layer.wq, s), layer.wk16 = upload_bf16(layer.wk, s);
        layer.wv16 = upload_bf16(layer.wv, s), layer.wo16 = upload_bf16(layer.wo, s);
        layer.w_gate16 = upload_bf16(layer.w_gate, s), layer.w_up16 = upload_bf16(layer.w_up, s);
        layer.w_down16 = upload_bf16(layer.w_down, s);
      }
      layers.push_back(std::move(layer));
    }
    if (use_bf16) lm_head16 = upload_bf16(c.tie_word_embeddings ? embed : lm_head, stream.get());
    std::vector<double> freq(static_cast<std::size_t>(c.head_dim / 2));
    for (std::size_t i = 0; i < freq.size(); ++i)
      freq[i] =
          std::pow(static_cast<double>(c.rope_theta), -2.0 * static_cast<double>(i) / c.head_dim);
    inv_freq = DeviceBuffer<double>(std::span<const double>(freq));
    const auto N = static_cast<std::size_t>(max_tokens);
    tokens = DeviceBuffer<int>(N);
    x = DeviceBuffer<float>(N * c.hidden_size), h = DeviceBuffer<float>(N * c.hidden_size);
    q = DeviceBuffer<float>(N * c.q_dim()), attn = DeviceBuffer<float>(N * c.q_dim());
    k = DeviceBuffer<float>(N * c.kv_dim()), v = DeviceBuffer<float>(N * c.kv_dim());
    scores = DeviceBuffer<float>(static_cast<std::size_t>(c.num_heads) * N * N);
    gate = DeviceBuffer<float>(N * c.intermediate_size);
    up = DeviceBuffer<float>(N * c.intermediate_size);
    act = DeviceBuffer<float>(N * c.intermediate_size);
    logits = DeviceBuffer<float>(N * c.vocab_size);
    if (use_bf16)
      scratch16 =
          DeviceBuffer<bf16>(N * std::max(c.hidden_size, std::max(c.q_dim(), c.intermediate_size)));
    stream.synchronize();
  }

  void done(const char* op) {
    if (after_op) after_op(op);
  }

  //! [linear_dispatch]
  // y(n, out) = x(n, in) · Wᵀ (+ y): the one place the backends differ.
  void linear(const DeviceBuffer<float>& w, const DeviceBuffer<bf16>& w16, const float* d_x,
              float* d_y, int n, int in, int out, bool accumulate) {
    switch (backend) {
      case MatmulBackend::Naive:
        matmul_naive(d_x, w.get(), d_y, n, in, out, accumulate, stream.get());
        break;
      case MatmulBackend::CublasFP32:
      case MatmulBackend::CublasTF32:
        linear_fp32(cublas.get(), w.get(), d_x, d_y, n, in, out, accumulate,
                    backend == MatmulBackend::CublasTF32);
        break;
      case MatmulBackend::CublasBF16:
        to_bf16(d_x, scratch16.get(), static_cast<std::int64_t>(n) * in, stream.get());
        linear_bf16(cublas.get(), w16.get(), scratch16.get(), d_y, n, in, out, accumulate);
        break;
    }
  }
  //! [linear_dispatch]

  //! [forward]
  void run(int n) {
    const ModelConfig& c = config;
    const cudaStream_t s = stream.get();
    const int D = c.hidden_size, F = c.intermediate_size;
    embedding_gather(embed.get(), tokens.get(), x.get(), n, D, s);  // x: (n, D)
    done("embedding");
    for (const Layer& L : layers) {
      // Attention block: x += o_proj(attention(rope(q), rope(k), v)).
      rms_norm(x.get(), L.attn_norm.get(), h.get(), n, D, c.rms_norm_eps, s);
      done("layers.attn_norm");
      linear(L.wq, L.wq16, h.get(), q.get(), n, D, c.q_dim(), false);  // (n, H·d)
      done("layers.q_proj");
      linear(L.wk, L.wk16, h.get(), k.get(), n, D, c.kv_dim(), false);  // (n, Hkv·d)
      done("layers.k_proj");
      linear(L.wv, L.wv16, h.get(), v.get(), n, D, c.kv_dim(), false);
      done("layers.v_proj");
      apply_rope(q.get(), n, c.num_heads, c.head_dim, inv_freq.get(), 0, nullptr, s);
      apply_rope(k.get(), n, c.num_kv_heads, c.head_dim, inv_freq.get(), 0, nullptr, s);
      done("layers.rope");
      attention_naive(q.get(), k.get(), v.get(), scores.get(), attn.get(), n, c.num_heads,
                      c.num_kv_heads, c.head_dim, s);
      done("layers.attention");
      linear(L.wo, L.wo16, attn.get(), x.get(), n, c.q_dim(), D, /*accumulate=*/true);
      done("layers.o_proj+residual");
      // MLP block: x += down(silu(gate(h)) ⊙ up(h)).
      rms_norm(x.get(), L.mlp_norm.get(), h.get(), n, D, c.rms_norm_eps, s);
      done("layers.mlp_norm");
      linear(L.w_gate, L.w_gate16, h.get(), gate.get(), n, D, F, false);
      done("layers.gate_proj");
      linear(L.w_up, L.w_up16, h.get(), up.get(), n, D, F, false);
      done("layers.up_proj");
      swiglu(gate.get(), up.get(), act.get(), n, F, F, s);
      done("layers.swiglu");
      linear(L.w_down, L.w_down16, act.get(), x.get(), n, F, D, /*accumulate=*/true);
      done("layers.down_proj+residual");
    }
    rms_norm(x.get(), final_norm.get(), h.get(), n, D, c.rms_norm_eps, s);
    done("final_norm");
    const DeviceBuffer<float>& out = c.tie_word_embeddings ? embed : lm_head;
    linear(out, lm_head16, h.get(), logits.get(), n, D, c.vocab_size, false);  // (n, V)
    done("logits");
  }
  //! [forward]

  int upload_tokens(std::span<const int> ids) {
    const int n = static_cast<int>(ids.size());
    require(n >= 1, "forward: empty sequence");
    require(n <= max_tokens, "forward: " + std::to_string(n) + " tokens exceed the " +
                                 std::to_string(max_tokens) + " this model was sized for");
    for (int id : ids)
      require(id >= 0 && id < config.vocab_size,
              "forward: token id " + std::to_string(id) + " is outside the vocabulary");
    LAB_CUDA_CHECK(cudaMemcpyAsync(tokens.get(), ids.data(), ids.size_bytes(),
                                   cudaMemcpyHostToDevice, stream.get()));
    return n;
  }
};

TeacherForcedForward::TeacherForcedForward(const ModelWeights& weights, MatmulBackend backend,
                                           int max_tokens)
    : impl_(std::make_unique<Impl>(weights, backend, max_tokens)) {}
TeacherForcedForward::~TeacherForcedForward() = default;
const ModelConfig& TeacherForcedForward::config() const {
  return impl_->config;
}
MatmulBackend TeacherForcedForward::backend() const {
  return impl_->backend;
}

std::vector<float> TeacherForcedForward::forward(std::span<const int> tokens) {
  const int n = impl_->upload_tokens(tokens);
  impl_->run(n);
  std::vector<float> out(static_cast<std::size_t>(n) * impl_->config.vocab_size);
  LAB_CUDA_CHECK(cudaMemcpyAsync(out.data(), impl_->logits.get(), out.size() * sizeof(float),
                                 cudaMemcpyDeviceToHost, impl_->stream.get()));
  impl_->stream.synchronize();
  return out;
}

TimingStats TeacherForcedForward::time_forward(std::span<const int> tokens, int warmup,
                                               int repeats) {
  const int n = impl_->upload_tokens(tokens);
  return time_on_device(
      impl_->stream.get(), [&] { impl_->run(n); }, warmup, repeats);
}

std::map<std::string, double> TeacherForcedForward::profile(std::span<const int> tokens) {
  const int n = impl_->upload_tokens(tokens);
  impl_->run(n);  // warm-up: module load, cuBLAS heuristics
  std::map<std::string, double> seconds;
  Event start, stop;
  const cudaStream_t s = impl_->stream.get();
  start.record(s);
  impl_->after_op = [&](const char* op) {
    stop.record(s);
    seconds[op] += 1e-3 * stop.elapsed_ms_since(start);
    start.record(s);
  };
  impl_->run(n);
  impl_->after_op = nullptr;
  impl_->stream.synchronize();
  return seconds;
}

}  // namespace lab::cuda
