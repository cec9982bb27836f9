// The chapter 8 decoder. One forward routine serves prefill (n tokens, GEMMs through cuBLAS) and
// decode (one token, the GEMV kernels); the KV cache and the position live on the device, so the
// decode step — forward of one token plus the on-device argmax — is captured once as a CUDA graph
// and replayed for every token.
#include <algorithm>
#include <cmath>
#include <deque>
#include <map>

#include "common/error.hpp"
#include "cuda/buffer.hpp"
#include "cuda/check.cuh"
#include "cuda/decoder.hpp"
#include "cuda/device.hpp"
#include "cuda/gemm.hpp"
#include "cuda/resources.hpp"
#include "cuda/upload.hpp"

namespace lab::cuda {

std::string to_string(DecoderPrecision precision) {
  return precision == DecoderPrecision::FP32 ? "fp32" : "bf16";
}

DecoderPrecision parse_decoder_precision(const std::string& text) {
  if (text == "fp32") return DecoderPrecision::FP32;
  if (text == "bf16") return DecoderPrecision::BF16;
  throw Error("'" + text + "' is not a decoder precision (allowed: fp32, bf16)");
}

namespace {

std::vector<float> concat_rows(std::initializer_list<const Tensor*> parts) {
  std::vector<float> out;
  for (const Tensor* t : parts) out.insert(out.end(), t->data.begin(), t->data.end());
  return out;
}

}  // namespace

template <typename T>
struct DecoderImpl {
  struct Layer {
    DeviceBuffer<float> attn_norm, mlp_norm;  // (D)
    DeviceBuffer<T> w_qkv;                    // [q_dim + 2 kv_dim, D]: q, k, v rows stacked
    DeviceBuffer<T> wo;                       // [D, q_dim]
    DeviceBuffer<T> w_gate_up;                // [2F, D]: gate rows, then up rows
    DeviceBuffer<T> w_down;                   // [D, F]
  };
  ModelConfig config;
  DecoderOptions options;
  int length = 0;  // host mirror of *d_pos
  Stream stream;
  CublasHandle cublas{stream.get()};
  DeviceBuffer<T> embed, lm_head;  // lm_head empty when tied
  DeviceBuffer<float> final_norm;
  std::vector<Layer> layers;
  DeviceBuffer<T> k_cache, v_cache;  // (layers, capacity, kv_dim)
  DeviceBuffer<double> inv_freq;
  DeviceBuffer<int> d_pos{1}, d_token{1}, d_step{1}, d_tokens, d_history, split_counters;
  DeviceBuffer<float> x, h, qkv, attn, gate_up, act, logits, split_scratch;
  DeviceBuffer<bf16> h16;  // bf16 copy of a GEMM input (bf16 prefill)
  std::unique_ptr<CudaGraph> decode_graph = std::make_unique<CudaGraph>();
  // Profiling (profile_decode_step): when on, mark() records an event after each kernel.
  bool profiling = false;
  std::deque<Event> marks;
  std::vector<std::pair<std::string, int>> mark_names;  // (kernel, launches) ending at each mark

  explicit DecoderImpl(const ModelConfig& c, const DecoderOptions& o) : config(c), options(o) {
    validate(config);
    require(options.capacity >= 1, "the KV cache capacity must be at least 1 token");
    if (options.max_prefill <= 0) options.max_prefill = options.capacity;
    require(options.prefill_chunk >= 0, "the prefill chunk must be >= 0 tokens (0: no chunks)");
    options.prefill_chunk = std::min(options.prefill_chunk, options.max_prefill);
    require_device_memory(static_cast<std::size_t>(device_bytes()),
                          "the model " + c.name + " (" + to_string(options.precision) +
                              ", KV cache of " + std::to_string(options.capacity) + " tokens)");
    std::vector<double> freq(static_cast<std::size_t>(c.head_dim / 2));
    for (std::size_t i = 0; i < freq.size(); ++i)
      freq[i] =
          std::pow(static_cast<double>(c.rope_theta), -2.0 * static_cast<double>(i) / c.head_dim);
    inv_freq = DeviceBuffer<double>(std::span<const double>(freq));
    const auto kv = static_cast<std::size_t>(c.num_layers) * options.capacity * c.kv_dim();
    k_cache = DeviceBuffer<T>(kv), v_cache = DeviceBuffer<T>(kv);
    const auto N = static_cast<std::size_t>(options.max_prefill);
    d_tokens = DeviceBuffer<int>(N);
    d_history = DeviceBuffer<int>(static_cast<std::size_t>(options.capacity) + 1);
    x = DeviceBuffer<float>(N * c.hidden_size), h = DeviceBuffer<float>(N * c.hidden_size);
    qkv = DeviceBuffer<float>(N * (c.q_dim() + 2 * c.kv_dim()));
    attn = DeviceBuffer<float>(N * c.q_dim());
    gate_up = DeviceBuffer<float>(N * 2 * c.intermediate_size);
    act = DeviceBuffer<float>(N * c.intermediate_size);
    logits = DeviceBuffer<float>(N * c.vocab_size);
    split_scratch = DeviceBuffer<float>(static_cast<std::size_t>(
        attention_split_scratch_floats(c.num_heads, c.head_dim, options.capacity)));
    // The split-KV kernel's counters start at zero (on the decoder's stream: it does not wait for
    // the legacy default stream).
    split_counters = DeviceBuffer<int>(static_cast<std::size_t>(c.num_heads));
    LAB_CUDA_CHECK(cudaMemsetAsync(split_counters.get(), 0, split_counters.bytes(), stream.get()));
    if constexpr (!std::is_same_v<T, float>)
      h16 = DeviceBuffer<bf16>(N * std::max({c.hidden_size, c.q_dim(), c.intermediate_size}));
    reset();
  }

  double device_bytes() const {
    const ModelConfig& c = config;
    const double b = sizeof(T),
                 N = options.max_prefill > 0 ? options.max_prefill : options.capacity;
    const double kv = 2.0 * c.num_layers * options.capacity * c.kv_dim() * b;
    const double act = 4.0 * N *
                       (2.0 * c.hidden_size + 2.0 * c.q_dim() + 2.0 * c.kv_dim() +
                        3.0 * c.intermediate_size + c.vocab_size);
    return static_cast<double>(c.parameter_count()) * b + kv + act + (64 << 20);
  }

  double decode_bytes(int context) const {
    const ModelConfig& c = config;
    const double b = sizeof(T), D = c.hidden_size, F = c.intermediate_size;
    const double per_layer =
        ((c.q_dim() + 2.0 * c.kv_dim()) * D + D * c.q_dim() + 3.0 * D * F) * b + 2.0 * D * 4 +
        2.0 * context * c.kv_dim() * b;
    return c.num_layers * per_layer + c.vocab_size * D * b + D * b + D * 4;
  }

  void reset() {
    LAB_CUDA_CHECK(cudaMemsetAsync(d_pos.get(), 0, sizeof(int), stream.get()));
    LAB_CUDA_CHECK(cudaMemsetAsync(d_step.get(), 0, sizeof(int), stream.get()));
    LAB_CUDA_CHECK(cudaMemsetAsync(d_token.get(), 0, sizeof(int), stream.get()));
    stream.synchronize();
    length = 0;
  }

  void upload(const ModelWeights& w) {
    validate(w);
    const cudaStream_t s = stream.get();
    embed = upload_as<T>(w.at("model.embed_tokens.weight").data, s);
    if (!config.tie_word_embeddings) lm_head = upload_as<T>(w.at("lm_head.weight").data, s);
    final_norm = DeviceBuffer<float>(std::span<const float>(w.at("model.norm.weight").data));
    for (int l = 0; l < config.num_layers; ++l) {
      auto t = [&](const char* suffix) { return &w.at(layer_tensor_name(l, suffix)); };
      Layer L;
      L.attn_norm = DeviceBuffer<float>(std::span<const float>(t("input_layernorm.weight")->data));
      L.mlp_norm =
          DeviceBuffer<float>(std::span<const float>(t("post_attention_layernorm.weight")->data));
      L.w_qkv =
          upload_as<T>(concat_rows({t("self_attn.q_proj.weight"), t("self_attn.k_proj.weight"),
                                    t("self_attn.v_proj.weight")}),
                       s);
      L.wo = upload_as<T>(t("self_attn.o_proj.weight")->data, s);
      L.w_gate_up =
          upload_as<T>(concat_rows({t("mlp.gate_proj.weight"), t("mlp.up_proj.weight")}), s);
      L.w_down = upload_as<T>(t("mlp.down_proj.weight")->data, s);
      layers.push_back(std::move(L));
    }
  }

  void randomize(std::uint64_t seed) {
    const ModelConfig& c = config;
    const cudaStream_t s = stream.get();
    const auto D = static_cast<std::size_t>(c.hidden_size);
    const auto F = static_cast<std::size_t>(c.intermediate_size);
    std::uint64_t stream_id = seed * 1000003ULL;
    auto matrix = [&](std::size_t rows, std::size_t cols, float stddev) {
      DeviceBuffer<T> m(rows * cols);
      fill_random<T>(m.get(), static_cast<std::int64_t>(m.size()), ++stream_id, stddev, 0.0f, s);
      return m;
    };
    auto gain = [&] {
      DeviceBuffer<float> g(D);
      fill_random<float>(g.get(), static_cast<std::int64_t>(D), ++stream_id, 0.1f, 1.0f, s);
      return g;
    };
    const auto V = static_cast<std::size_t>(c.vocab_size);
    embed = matrix(V, D, 1.0f);
    if (!c.tie_word_embeddings) lm_head = matrix(V, D, 1.0f / std::sqrt(static_cast<float>(D)));
    final_norm = gain();
    const auto qkv_rows = static_cast<std::size_t>(c.q_dim() + 2 * c.kv_dim());
    for (int l = 0; l < c.num_layers; ++l) {
      Layer L;
      L.attn_norm = gain(), L.mlp_norm = gain();
      L.w_qkv = matrix(qkv_rows, D, 1.0f / std::sqrt(static_cast<float>(D)));
      L.wo = matrix(D, static_cast<std::size_t>(c.q_dim()),
                    1.0f / std::sqrt(static_cast<float>(c.q_dim())));
      L.w_gate_up = matrix(2 * F, D, 1.0f / std::sqrt(static_cast<float>(D)));
      L.w_down = matrix(D, F, 1.0f / std::sqrt(static_cast<float>(F)));
      layers.push_back(std::move(L));
    }
    stream.synchronize();
  }

  //! [decoder_linear]
  // y(n, out) = x(n, in) · Wᵀ (+ y). One token: the memory-bound GEMV kernels. Several: a GEMM on
  // the tensor cores (bf16) or cuBLAS fp32 (validation mode).
  void linear(const T* w, const float* d_x, float* d_y, int n, int in, int out, bool accumulate) {
    if (n == 1) {
      gemv<T>(options.gemv, w, d_x, d_y, out, in, accumulate, stream.get(), pdl());
    } else if constexpr (std::is_same_v<T, float>) {
      linear_fp32(cublas.get(), w, d_x, d_y, n, in, out, accumulate, /*tf32=*/false);
    } else {
      to_bf16(d_x, h16.get(), static_cast<std::int64_t>(n) * in, stream.get());
      linear_bf16(cublas.get(), w, h16.get(), d_y, n, in, out, accumulate);
    }
  }
  //! [decoder_linear]

  // Under profile_decode_step: an event after the kernel(s) just launched, named for them.
  void mark(const char* name, int launches = 1) {
    if (!profiling) return;
    marks.emplace_back();
    // Inside a stream capture, External makes the record a node of the graph (a timestamp), not
    // only an ordering point.
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    LAB_CUDA_CHECK(cudaStreamIsCapturing(stream.get(), &capture));
    LAB_CUDA_CHECK(cudaEventRecordWithFlags(marks.back().get(), stream.get(),
                                            capture == cudaStreamCaptureStatusActive
                                                ? cudaEventRecordExternal
                                                : cudaEventRecordDefault));
    mark_names.emplace_back(name, launches);
  }
  bool pdl() const { return options.pdl && !profiling; }

  //! [decoder_forward]
  // Runs n tokens (device ids) at positions *d_pos.., appends their keys/values to the cache,
  // writes the logits of the last `rows` tokens and advances *d_pos. Launches only: no host sync,
  // no host-side positions, so that the one-token case can be captured into a graph.
  void launch(const int* d_ids, int n, bool all_logits) {
    const ModelConfig& c = config;
    const cudaStream_t s = stream.get();
    const int D = c.hidden_size, F = c.intermediate_size, qd = c.q_dim(), kvd = c.kv_dim();
    const std::size_t cache_layer = static_cast<std::size_t>(options.capacity) * kvd;
    const T* out = c.tie_word_embeddings ? embed.get() : lm_head.get();
    if (n == 1 && fused_decode(out)) return launch_fused_decode(d_ids, out);
    embedding_gather(embed.get(), d_ids, x.get(), n, D, s);  // x: (n, D)
    mark("embedding");
    for (std::size_t l = 0; l < layers.size(); ++l) {
      const Layer& L = layers[l];
      T* kc = k_cache.get() + l * cache_layer;
      T* vc = v_cache.get() + l * cache_layer;
      float* q = qkv.get();  // (n, H·d), then k (n, Hkv·d), then v (n, Hkv·d)
      float* k = q + static_cast<std::size_t>(n) * qd;
      float* v = k + static_cast<std::size_t>(n) * kvd;
      rms_norm(x.get(), L.attn_norm.get(), h.get(), n, D, c.rms_norm_eps, s);
      mark("attn_norm");
      if (n == 1) {  // one GEMV over the stacked rows writes q | k | v back to back
        linear(L.w_qkv.get(), h.get(), q, 1, D, qd + 2 * kvd, false);
      } else {
        linear(L.w_qkv.get(), h.get(), q, n, D, qd, false);
        linear(L.w_qkv.get() + static_cast<std::size_t>(qd) * D, h.get(), k, n, D, kvd, false);
        linear(L.w_qkv.get() + static_cast<std::size_t>(qd + kvd) * D, h.get(), v, n, D, kvd,
               false);
      }
      mark("qkv_proj");
      apply_rope(q, n, c.num_heads, c.head_dim, inv_freq.get(), 0, d_pos.get(), s);
      apply_rope(k, n, c.num_kv_heads, c.head_dim, inv_freq.get(), 0, d_pos.get(), s);
      mark("rope (q, k)", 2);
      kv_append<T>(k, v, kc, vc, n, kvd, d_pos.get(), s);
      mark("kv_append");
      const int attention_launches = attention_cached<T>(
          q, kc, vc, attn.get(), n, c.num_heads, c.num_kv_heads, c.head_dim, d_pos.get(),
          options.capacity, s, split_scratch.get(), pdl(), split_counters.get(),
          options.split_kv_version, L.wo.get(), sizeof(T) * static_cast<std::size_t>(qd) * D);
      mark("attention", attention_launches);
      linear(L.wo.get(), attn.get(), x.get(), n, qd, D, /*accumulate=*/true);  // x += o_proj
      mark("o_proj + residual");
      rms_norm(x.get(), L.mlp_norm.get(), h.get(), n, D, c.rms_norm_eps, s);
      mark("mlp_norm");
      linear(L.w_gate_up.get(), h.get(), gate_up.get(), n, D, 2 * F, false);  // (n, 2F)
      mark("gate_up_proj");
      swiglu(gate_up.get(), gate_up.get() + F, act.get(), n, F, 2 * F, s);
      mark("swiglu");
      linear(L.w_down.get(), act.get(), x.get(), n, F, D, /*accumulate=*/true);  // x += down
      mark("down_proj + residual");
    }
    const int rows = all_logits ? n : 1;  // decode needs only the last token's logits
    const float* last = x.get() + static_cast<std::size_t>(n - rows) * D;
    rms_norm(last, final_norm.get(), h.get(), rows, D, c.rms_norm_eps, s);
    mark("final_norm");
    linear(out, h.get(), logits.get(), rows, D, c.vocab_size, false);  // (rows, V)
    mark("lm_head");
    advance_position(d_pos.get(), n, s);
    mark("advance_position");
  }
  //! [decoder_forward]

  // The fused GEMVs need whole 16-byte vectors in every row they read (D % 8 in bf16).
  bool fused_decode(const T* out) const {
    return options.fuse && decode_gemv_fusable(out, x.get(), config.hidden_size) &&
           decode_gemv_fusable(layers.front().w_qkv.get(), x.get(), config.hidden_size) &&
           decode_gemv_fusable(layers.front().w_gate_up.get(), x.get(), config.hidden_size);
  }

  //! [decode_fused]
  // The decode step with the fused GEMVs: five kernels a layer instead of eleven. Each GEMV starts
  // from the residual stream x and normalises it itself; nothing but x, q, the KV cache and the
  // MLP activation goes through main memory between kernels.
  void launch_fused_decode(const int* d_id, const T* out) {
    const ModelConfig& c = config;
    const cudaStream_t s = stream.get();
    const int D = c.hidden_size, F = c.intermediate_size, qd = c.q_dim(), kvd = c.kv_dim();
    const float eps = c.rms_norm_eps;
    const std::size_t cache_layer = static_cast<std::size_t>(options.capacity) * kvd;
    embedding_gather(embed.get(), d_id, x.get(), 1, D, s);
    mark("embedding");
    for (std::size_t l = 0; l < layers.size(); ++l) {
      const Layer& L = layers[l];
      T* kc = k_cache.get() + l * cache_layer;
      T* vc = v_cache.get() + l * cache_layer;
      float* q = qkv.get();
      // q = RoPE(Wq n), cache[pos] = (RoPE(Wk n), Wv n), n = rmsnorm(x)
      gemv_rmsnorm_qkv_rope<T>(L.w_qkv.get(), x.get(), L.attn_norm.get(), eps, q, kc, vc,
                               c.num_heads, c.num_kv_heads, c.head_dim, D, inv_freq.get(),
                               d_pos.get(), s, pdl(), options.gemv);
      mark("qkv_proj + norm + rope + append");
      const int attention_launches = attention_cached<T>(
          q, kc, vc, attn.get(), 1, c.num_heads, c.num_kv_heads, c.head_dim, d_pos.get(),
          options.capacity, s, split_scratch.get(), pdl(), split_counters.get(),
          options.split_kv_version, L.wo.get(), sizeof(T) * static_cast<std::size_t>(qd) * D);
      mark("attention", attention_launches);
      gemv<T>(options.gemv, L.wo.get(), attn.get(), x.get(), D, qd, true, s, pdl());  // x += Wo a
      mark("o_proj + residual");
      // act = silu(Wg n) ⊙ (Wu n), n = rmsnorm(x)
      gemv_rmsnorm_swiglu<T>(L.w_gate_up.get(), x.get(), L.mlp_norm.get(), eps, act.get(), F, D, s,
                             pdl(), options.gemv);
      mark("gate_up_proj + norm + swiglu");
      gemv<T>(options.gemv, L.w_down.get(), act.get(), x.get(), D, F, true, s,
              pdl());  // x += Wd act
      mark("down_proj + residual");
    }
    gemv_rmsnorm<T>(out, x.get(), final_norm.get(), eps, logits.get(), c.vocab_size, D, s, pdl(),
                    options.gemv);
    mark("lm_head + final_norm");
    advance_position(d_pos.get(), 1, s);
    mark("advance_position");
  }
  //! [decode_fused]

  //! [decode_step]
  // One greedy decode step, all on the device: the token chosen last step is the input, argmax
  // writes the next one (and appends it to the history). Nothing here depends on the host.
  void decode_step() {
    launch(d_token.get(), 1, false);
    argmax(logits.get(), config.vocab_size, d_token.get(), d_history.get(), d_step.get(),
           stream.get());
    mark("argmax");
  }
  void run_decode_step(bool use_graph) {
    if (use_graph) {
      if (!decode_graph->ready()) decode_graph->capture(stream.get(), [&] { decode_step(); });
      decode_graph->launch(stream.get());
    } else {
      decode_step();
    }
  }
  //! [decode_step]

  // The longest single forward call when `n` tokens come in: all of them, or the prefill chunk.
  int call_tokens(int n) const {
    return options.prefill_chunk > 0 ? std::min(n, options.prefill_chunk) : n;
  }

  void check_room(int n) const {
    require(n >= 1, "forward: no tokens");
    require(call_tokens(n) <= options.max_prefill, "forward: " + std::to_string(n) +
                                                       " tokens in one call exceed max_prefill " +
                                                       std::to_string(options.max_prefill));
    require(length + n <= options.capacity, "context of " + std::to_string(length + n) +
                                                " tokens exceeds the KV cache capacity " +
                                                std::to_string(options.capacity));
  }

  void check_ids(std::span<const int> ids) const {
    for (int id : ids)
      require(id >= 0 && id < config.vocab_size,
              "token id " + std::to_string(id) + " is outside the vocabulary");
  }

  // ids: checked by the caller (check_ids), once for the whole prompt.
  void upload_tokens(std::span<const int> ids) {
    LAB_CUDA_CHECK(cudaMemcpyAsync(d_tokens.get(), ids.data(), ids.size_bytes(),
                                   cudaMemcpyHostToDevice, stream.get()));
  }

  //! [chunked_prefill]
  // Runs `ids` at positions length.. in calls of call_tokens() tokens: one call, or with
  // options.prefill_chunk = c, chunks of c (chunked prefill). Each chunk attends to the cache
  // its predecessors filled, so the result is the one-call result up to rounding (the order of
  // the sums; in bf16 a GEMM rounds its inputs to bf16, the GEMVs of c = 1 do not); the
  // activations need room for c tokens, not the whole prompt. With c = 1 the prompt runs
  // through the decode step's kernels. When `all_logits`, the logits of every token are copied
  // into `out` (n, V); else `logits` holds the last token's on return. Checks every id first, so
  // a bad one leaves the cache as it was.
  void run_chunks(std::span<const int> ids, bool all_logits, std::vector<float>* out) {
    const int n = static_cast<int>(ids.size());
    check_room(n);
    check_ids(ids);
    const int chunk = call_tokens(n);
    for (int start = 0; start < n; start += chunk) {
      const int m = std::min(chunk, n - start);
      upload_tokens(ids.subspan(static_cast<std::size_t>(start), static_cast<std::size_t>(m)));
      launch(d_tokens.get(), m, all_logits);
      if (all_logits)
        LAB_CUDA_CHECK(cudaMemcpyAsync(
            out->data() + static_cast<std::size_t>(start) * config.vocab_size, logits.get(),
            sizeof(float) * m * config.vocab_size, cudaMemcpyDeviceToHost, stream.get()));
    }
  }
  //! [chunked_prefill]

  std::vector<float> forward(std::span<const int> ids, bool all_logits) {
    const int n = static_cast<int>(ids.size());
    std::vector<float> out(static_cast<std::size_t>(all_logits ? n : 1) * config.vocab_size);
    run_chunks(ids, all_logits, &out);
    if (!all_logits)
      LAB_CUDA_CHECK(cudaMemcpyAsync(out.data(), logits.get(), out.size() * sizeof(float),
                                     cudaMemcpyDeviceToHost, stream.get()));
    stream.synchronize();
    length += n;
    return out;
  }

  std::vector<int> generate_greedy(std::span<const int> prompt, int max_new, bool use_graph,
                                   const std::function<bool(int)>& on_token) {
    require(length == 0, "generate_greedy: the KV cache must be empty (call reset)");
    if (max_new <= 0) return {};
    const int n = static_cast<int>(prompt.size());
    check_room(n);
    require(n + max_new - 1 <= options.capacity,
            "prompt (" + std::to_string(n) + ") + new tokens (" + std::to_string(max_new) +
                ") exceed the KV cache capacity " + std::to_string(options.capacity));
    run_chunks(prompt, false, nullptr);  // prefill
    argmax(logits.get(), config.vocab_size, d_token.get(), d_history.get(), d_step.get(),
           stream.get());
    length += n;
    std::vector<int> out;
    auto emit = [&]() {
      int token = 0;
      LAB_CUDA_CHECK(cudaMemcpyAsync(&token, d_token.get(), sizeof(int), cudaMemcpyDeviceToHost,
                                     stream.get()));
      stream.synchronize();
      out.push_back(token);
      return on_token(token);
    };
    if (on_token && !emit()) return out;
    for (int i = 1; i < max_new; ++i) {
      run_decode_step(use_graph);
      ++length;
      if (on_token && !emit()) return out;
    }
    if (!on_token) {  // one copy of the whole history at the end
      std::vector<int> history(static_cast<std::size_t>(max_new));
      LAB_CUDA_CHECK(cudaMemcpyAsync(history.data(), d_history.get(), history.size() * sizeof(int),
                                     cudaMemcpyDeviceToHost, stream.get()));
      stream.synchronize();
      out = history;
    }
    return out;
  }

  TimingStats time_decode(int steps, int warmup, bool use_graph) {
    require(length >= 1, "time_decode: run a prefill first");
    require(length + warmup + steps <= options.capacity,
            "time_decode: not enough room left in the KV cache");
    const int saved = length;
    LAB_CUDA_CHECK(cudaMemsetAsync(d_step.get(), 0, sizeof(int), stream.get()));
    TimingStats stats = time_on_device(
        stream.get(), [&] { run_decode_step(use_graph); }, warmup, steps);
    // Roll the cache back: the rows written past `saved` become invisible again.
    LAB_CUDA_CHECK(
        cudaMemcpyAsync(d_pos.get(), &saved, sizeof(int), cudaMemcpyHostToDevice, stream.get()));
    LAB_CUDA_CHECK(cudaMemsetAsync(d_step.get(), 0, sizeof(int), stream.get()));
    stream.synchronize();
    return stats;
  }

  std::vector<StepKernelTime> profile_decode_step(int repeats, bool use_graph) {
    require(length >= 1, "profile_decode_step: run a prefill first");
    require(repeats >= 1 && length + repeats + 1 <= options.capacity,
            "profile_decode_step: not enough room left in the KV cache");
    const int saved = length;
    std::map<std::string, std::vector<double>> per_kernel;  // seconds per step, each repeat
    std::map<std::string, int> launches;
    std::vector<std::string> order;
    Event start;
    CudaGraph graph;
    profiling = true;
    try {
      if (use_graph) {  // events recorded during capture become timestamp nodes of the graph
        graph.capture(stream.get(), [&] {
          LAB_CUDA_CHECK(
              cudaEventRecordWithFlags(start.get(), stream.get(), cudaEventRecordExternal));
          decode_step();
        });
        graph.launch(stream.get());  // warm-up
      } else {
        decode_step();  // warm-up
      }
      stream.synchronize();
      for (int r = 0; r < repeats; ++r) {
        if (use_graph) {
          graph.launch(stream.get());
        } else {
          marks.clear(), mark_names.clear();
          start.record(stream.get());
          decode_step();
        }
        stream.synchronize();
        std::map<std::string, double> step;
        const Event* previous = &start;
        for (std::size_t i = 0; i < marks.size(); ++i) {
          const auto& [name, count] = mark_names[i];
          if (r == 0 && !launches.count(name)) order.push_back(name);
          if (r == 0) launches[name] += count;
          step[name] += 1e-3 * marks[i].elapsed_ms_since(*previous);
          previous = &marks[i];
        }
        for (const auto& [name, seconds] : step) per_kernel[name].push_back(seconds);
      }
    } catch (...) {
      profiling = false;
      marks.clear(), mark_names.clear();
      throw;
    }
    profiling = false;
    marks.clear(), mark_names.clear();
    LAB_CUDA_CHECK(
        cudaMemcpyAsync(d_pos.get(), &saved, sizeof(int), cudaMemcpyHostToDevice, stream.get()));
    LAB_CUDA_CHECK(cudaMemsetAsync(d_step.get(), 0, sizeof(int), stream.get()));
    stream.synchronize();
    std::vector<StepKernelTime> out;
    for (const std::string& name : order)
      out.push_back({name, launches[name], summarize(per_kernel[name]).median});
    return out;
  }

  void set_decode_kernels(GemvVersion gemv, bool fuse, bool use_pdl, int split_kv_version) {
    options.gemv = gemv, options.fuse = fuse, options.pdl = use_pdl;
    options.split_kv_version = split_kv_version;
    decode_graph = std::make_unique<CudaGraph>();  // captured again at the next graph launch
  }

  TimingStats time_prefill(std::span<const int> ids, int warmup, int repeats) {
    reset();
    const int n = static_cast<int>(ids.size());
    check_room(n);
    check_ids(ids);
    upload_tokens(ids);
    TimingStats stats = time_on_device(
        stream.get(),
        [&] {
          LAB_CUDA_CHECK(cudaMemsetAsync(d_pos.get(), 0, sizeof(int), stream.get()));
          launch(d_tokens.get(), n, false);
        },
        warmup, repeats);
    reset();
    return stats;
  }
};

struct Decoder::Impl {
  std::unique_ptr<DecoderImpl<float>> fp32;
  std::unique_ptr<DecoderImpl<bf16>> bf16;
  template <typename F>
  decltype(auto) visit(F&& f) {
    if (fp32) return f(*fp32);
    return f(*bf16);
  }
};

Decoder::Decoder(const ModelWeights& weights, const DecoderOptions& options)
    : impl_(std::make_unique<Impl>()) {
  require_device();
  if (options.precision == DecoderPrecision::FP32) {
    impl_->fp32 = std::make_unique<DecoderImpl<float>>(weights.config, options);
    impl_->fp32->upload(weights);
  } else {
    impl_->bf16 = std::make_unique<DecoderImpl<bf16>>(weights.config, options);
    impl_->bf16->upload(weights);
  }
}

Decoder::Decoder(const ModelConfig& config, std::uint64_t seed, const DecoderOptions& options)
    : impl_(std::make_unique<Impl>()) {
  require_device();
  if (options.precision == DecoderPrecision::FP32) {
    impl_->fp32 = std::make_unique<DecoderImpl<float>>(config, options);
    impl_->fp32->randomize(seed);
  } else {
    impl_->bf16 = std::make_unique<DecoderImpl<bf16>>(config, options);
    impl_->bf16->randomize(seed);
  }
}

Decoder::~Decoder() = default;
const ModelConfig& Decoder::config() const {
  return impl_->fp32 ? impl_->fp32->config : impl_->bf16->config;
}
const DecoderOptions& Decoder::options() const {
  return impl_->fp32 ? impl_->fp32->options : impl_->bf16->options;
}
int Decoder::length() const {
  return impl_->fp32 ? impl_->fp32->length : impl_->bf16->length;
}
void Decoder::reset() {
  impl_->visit([](auto& d) { d.reset(); });
}
std::vector<float> Decoder::forward(std::span<const int> tokens, bool all_logits) {
  return impl_->visit([&](auto& d) { return d.forward(tokens, all_logits); });
}
std::vector<int> Decoder::generate_greedy(std::span<const int> prompt, int max_new_tokens,
                                          bool use_graph,
                                          const std::function<bool(int)>& on_token) {
  return impl_->visit(
      [&](auto& d) { return d.generate_greedy(prompt, max_new_tokens, use_graph, on_token); });
}
TimingStats Decoder::time_decode(int steps, int warmup, bool use_graph) {
  return impl_->visit([&](auto& d) { return d.time_decode(steps, warmup, use_graph); });
}
TimingStats Decoder::time_prefill(std::span<const int> tokens, int warmup, int repeats) {
  return impl_->visit([&](auto& d) { return d.time_prefill(tokens, warmup, repeats); });
}
std::vector<StepKernelTime> Decoder::profile_decode_step(int repeats, bool use_graph) {
  return impl_->visit([&](auto& d) { return d.profile_decode_step(repeats, use_graph); });
}
void Decoder::set_decode_kernels(GemvVersion gemv, bool fuse, bool pdl, int split_kv_version) {
  impl_->visit([&](auto& d) { d.set_decode_kernels(gemv, fuse, pdl, split_kv_version); });
}
double Decoder::decode_bytes(int context) const {
  return impl_->fp32 ? impl_->fp32->decode_bytes(context) : impl_->bf16->decode_bytes(context);
}

}  // namespace lab::cuda
