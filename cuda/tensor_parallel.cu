// Chapter 12: the chapter 8 decoder split over N ranks. Every rank runs the same chain of kernels
// as chapter 8 on its share of the heads and FFN columns; the two row-parallel projections of a
// block (o_proj, down_proj) leave partial sums that an all-reduce adds up before the residual.
#include <nccl.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "common/cost_model.hpp"
#include "common/error.hpp"
#include "cuda/buffer.hpp"
#include "cuda/check.cuh"
#include "cuda/device.hpp"
#include "cuda/gemm.hpp"
#include "cuda/resources.hpp"
#include "cuda/tensor_parallel.hpp"
#include "cuda/upload.hpp"

namespace lab::cuda {

namespace {

#define LAB_NCCL_CHECK(expr)                                                                     \
  do {                                                                                           \
    const ncclResult_t lab_nccl_ = (expr);                                                       \
    if (lab_nccl_ != ncclSuccess)                                                                \
      throw ::lab::Error(std::string(__FILE__) + ":" + std::to_string(__LINE__) + ": " + #expr + \
                         ": " + ncclGetErrorString(lab_nccl_));                                  \
  } while (0)

void set_device(int device) {
  LAB_CUDA_CHECK(cudaSetDevice(device));
}

//! [nccl_all_reduce]
class NcclAllReduce final : public AllReduce {
 public:
  explicit NcclAllReduce(const std::vector<int>& devices) : comms_(devices.size()) {
    // NVLink SHARP / multicast (NVLS) off: it reserves memory and needs fabric support that the
    // course does not assume. Forced, not defaulted: the course's runs must not depend on it.
    setenv("NCCL_NVLS_ENABLE", "0", 1);
    LAB_NCCL_CHECK(
        ncclCommInitAll(comms_.data(), static_cast<int>(devices.size()), devices.data()));
  }
  ~NcclAllReduce() override {
    for (ncclComm_t comm : comms_) ncclCommDestroy(comm);  // never throw from a destructor
  }
  std::string name() const override { return "nccl"; }
  int world_size() const override { return static_cast<int>(comms_.size()); }
  void sum(const std::vector<float*>& d_buffers, std::size_t count,
           const std::vector<cudaStream_t>& streams) override {
    // One thread, N communicators: the N calls must be one group, or the first would wait forever
    // for peers that this thread has not launched yet.
    LAB_NCCL_CHECK(ncclGroupStart());
    for (std::size_t r = 0; r < comms_.size(); ++r)
      LAB_NCCL_CHECK(ncclAllReduce(d_buffers[r], d_buffers[r], count, ncclFloat, ncclSum, comms_[r],
                                   streams[r]));
    LAB_NCCL_CHECK(ncclGroupEnd());
    // NCCL's kernels are not instrumented by scripts/gpu_sanitize.sh: tell initcheck the sums land.
    for (std::size_t r = 0; r < comms_.size(); ++r)
      mark_initialized(d_buffers[r], count * sizeof(float), streams[r]);
  }

 private:
  std::vector<ncclComm_t> comms_;
};
//! [nccl_all_reduce]

//! [emulated_all_reduce]
class EmulatedAllReduce final : public AllReduce {
 public:
  explicit EmulatedAllReduce(int world_size) : world_size_(world_size) {}
  std::string name() const override { return "emulated"; }
  int world_size() const override { return world_size_; }
  void sum(const std::vector<float*>& d_buffers, std::size_t count,
           const std::vector<cudaStream_t>& streams) override {
    require(static_cast<int>(d_buffers.size()) == world_size_ &&
                static_cast<int>(streams.size()) == world_size_,
            "emulated all-reduce: one buffer and one stream per rank");
    for (cudaStream_t s : streams)
      require(s == streams[0], "emulated all-reduce: every rank must share one stream");
    const auto n = static_cast<std::int64_t>(count);
    for (int r = 1; r < world_size_; ++r) residual_add(d_buffers[0], d_buffers[r], n, streams[0]);
    for (int r = 1; r < world_size_; ++r)
      LAB_CUDA_CHECK(cudaMemcpyAsync(d_buffers[r], d_buffers[0], count * sizeof(float),
                                     cudaMemcpyDeviceToDevice, streams[0]));
  }

 private:
  int world_size_;
};
//! [emulated_all_reduce]

/// One CUDA graph per stream, captured together: the graphs of N GPUs whose NCCL calls meet in
/// every all-reduce are captured from this one thread at the same time (as nccl-tests does).
class MultiGraph {
 public:
  MultiGraph() = default;
  ~MultiGraph() { reset(); }
  MultiGraph(const MultiGraph&) = delete;
  MultiGraph& operator=(const MultiGraph&) = delete;
  bool ready() const { return !execs_.empty(); }
  void capture(const std::vector<int>& devices, const std::vector<cudaStream_t>& streams,
               const std::function<void()>& body) {
    reset();
    devices_ = devices, streams_ = streams;
    std::size_t begun = 0;
    try {
      for (; begun < streams.size(); ++begun) {
        set_device(devices[begun]);
        LAB_CUDA_CHECK(cudaStreamBeginCapture(streams[begun], cudaStreamCaptureModeThreadLocal));
      }
      body();
    } catch (...) {
      for (std::size_t i = 0; i < begun; ++i) {
        cudaSetDevice(devices[i]);
        cudaGraph_t broken = nullptr;
        cudaStreamEndCapture(streams[i], &broken);
        if (broken) cudaGraphDestroy(broken);
      }
      throw;
    }
    for (std::size_t i = 0; i < streams.size(); ++i) {
      set_device(devices[i]);
      cudaGraph_t graph = nullptr;
      LAB_CUDA_CHECK(cudaStreamEndCapture(streams[i], &graph));
      graphs_.push_back(graph);
    }
    for (std::size_t i = 0; i < graphs_.size(); ++i) {
      set_device(devices[i]);
      cudaGraphExec_t exec = nullptr;
      LAB_CUDA_CHECK(cudaGraphInstantiate(&exec, graphs_[i], 0));
      execs_.push_back(exec);
    }
  }
  void launch() const {
    for (std::size_t i = 0; i < execs_.size(); ++i) {
      set_device(devices_[i]);
      LAB_CUDA_CHECK(cudaGraphLaunch(execs_[i], streams_[i]));
    }
  }

 private:
  void reset() {
    for (cudaGraphExec_t e : execs_) cudaGraphExecDestroy(e);
    for (cudaGraph_t g : graphs_) cudaGraphDestroy(g);
    execs_.clear(), graphs_.clear();
  }
  std::vector<int> devices_;
  std::vector<cudaStream_t> streams_;
  std::vector<cudaGraph_t> graphs_;
  std::vector<cudaGraphExec_t> execs_;
};

DType storage_dtype(DecoderPrecision p) {
  return p == DecoderPrecision::FP32 ? DType::FP32 : DType::BF16;
}

}  // namespace

int visible_gpu_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" status
    return 0;
  }
  return count;
}

std::unique_ptr<AllReduce> make_nccl_all_reduce(const std::vector<int>& devices) {
  return std::make_unique<NcclAllReduce>(devices);
}
std::unique_ptr<AllReduce> make_emulated_all_reduce(int world_size) {
  require(world_size >= 1, "emulated all-reduce: world size must be at least 1");
  return std::make_unique<EmulatedAllReduce>(world_size);
}

/// Everything one rank owns, on its device. Built and destroyed with that device current.
template <typename T>
struct Rank {
  struct Layer {
    DeviceBuffer<float> attn_norm, mlp_norm;  // (D), replicated
    DeviceBuffer<T> w_qkv;                    // [q_r + 2 kv_r, D]: this rank's heads' rows
    DeviceBuffer<T> wo;                       // [D, q_r]: row-parallel
    DeviceBuffer<T> w_gate_up;                // [2 F_r, D]: this rank's FFN columns
    DeviceBuffer<T> w_down;                   // [D, F_r]: row-parallel
  };
  int device = 0;
  TensorParallelShard shard;
  cudaStream_t stream = nullptr;  // owned by the decoder (one per device)
  std::unique_ptr<CublasHandle> cublas;
  std::vector<Layer> layers;
  DeviceBuffer<T> embed, lm_head;  // replicated; lm_head empty when tied
  DeviceBuffer<float> final_norm;
  DeviceBuffer<T> k_cache, v_cache;  // (layers, capacity, kv_r): this rank's KV heads only
  DeviceBuffer<double> inv_freq;
  DeviceBuffer<int> d_pos, d_token, d_step, d_tokens, d_history;
  DeviceBuffer<float> x, h, qkv, attn, partial, gate_up, act, logits, split_scratch;
  DeviceBuffer<bf16> h16;

  ~Rank() { cudaSetDevice(device); }  // the members are freed after this body, on their device
};

template <typename T>
struct TensorParallelImpl {
  ModelConfig config;
  TensorParallelOptions options;
  int length = 0;  // host mirror of every rank's *d_pos
  std::vector<std::unique_ptr<Stream>>
      streams;  // one per device in use (declared first: freed last)
  std::vector<int> stream_devices;
  std::vector<std::unique_ptr<Rank<T>>> ranks;
  std::vector<cudaStream_t> rank_streams;
  std::vector<float*> partials;  // each rank's partial-sum buffer, the all-reduce's operands
  std::unique_ptr<AllReduce> all_reduce;
  MultiGraph decode_graph;

  TensorParallelImpl(const ModelConfig& c, const TensorParallelOptions& o) : config(c), options(o) {
    const int N = options.world_size;
    validate_tensor_parallel(config, N);
    DecoderOptions& d = options.decoder;
    require(d.capacity >= 1, "the KV cache capacity must be at least 1 token");
    if (d.max_prefill <= 0) d.max_prefill = d.capacity;
    require_device();
    std::vector<int> devices;
    if (options.emulate) {
      int current = 0;
      LAB_CUDA_CHECK(cudaGetDevice(&current));
      devices.assign(static_cast<std::size_t>(N), current);
    } else {
      const int visible = visible_gpu_count();
      require(N <= visible, "tensor parallelism over " + std::to_string(N) + " GPUs, but " +
                                std::to_string(visible) +
                                " visible (CUDA_VISIBLE_DEVICES); --emulate " + std::to_string(N) +
                                " runs the " + std::to_string(N) + " ranks on one GPU");
      for (int r = 0; r < N; ++r) devices.push_back(r);
    }
    // Each GPU must hold its ranks' shares (all N of them in emulation).
    for (int r = 0; r < N; ++r) {
      if (r > 0 && devices[static_cast<std::size_t>(r)] == devices[0]) continue;
      const int on_device = options.emulate ? N : 1;
      set_device(devices[static_cast<std::size_t>(r)]);
      require_device_memory(static_cast<std::size_t>(on_device * rank_device_bytes()),
                            "rank " + std::to_string(r) + "'s share of " + c.name + " (" +
                                to_string(d.precision) + ", KV cache of " +
                                std::to_string(d.capacity) + " tokens)");
    }
    std::vector<double> freq(static_cast<std::size_t>(c.head_dim / 2));
    for (std::size_t i = 0; i < freq.size(); ++i)
      freq[i] =
          std::pow(static_cast<double>(c.rope_theta), -2.0 * static_cast<double>(i) / c.head_dim);
    for (int r = 0; r < N; ++r) {
      const int device = devices[static_cast<std::size_t>(r)];
      set_device(device);
      if (streams.empty() || !options.emulate) {
        streams.push_back(std::make_unique<Stream>());
        stream_devices.push_back(device);
      }
      auto rank = std::make_unique<Rank<T>>();
      rank->device = device;
      rank->shard = tensor_parallel_shard(c, N, r);
      rank->stream = streams.back()->get();
      rank->cublas = std::make_unique<CublasHandle>(rank->stream);
      rank->inv_freq = DeviceBuffer<double>(std::span<const double>(freq));
      allocate(*rank);
      rank_streams.push_back(rank->stream);
      partials.push_back(rank->partial.get());
      ranks.push_back(std::move(rank));
    }
    all_reduce = options.emulate ? make_emulated_all_reduce(N) : make_nccl_all_reduce(devices);
    reset();
  }

  // Bytes one rank allocates (weights, KV cache, activations, 64 MiB for cuBLAS and the runtime).
  double rank_device_bytes() const {
    const ModelConfig& c = config;
    const TensorParallelShard s = tensor_parallel_shard(c, options.world_size, 0);
    const double b = sizeof(T), D = c.hidden_size, N = options.decoder.max_prefill;
    const double qd = s.q_dim(c.head_dim), kvd = s.kv_dim(c.head_dim), F = s.ffn;
    const double weights =
        c.num_layers * (((qd + 2 * kvd) * D + D * qd + 3 * D * F) * b + 2 * D * 4) +
        c.vocab_size * D * b * (c.tie_word_embeddings ? 1 : 2) + D * 4;
    const double kv = 2.0 * c.num_layers * options.decoder.capacity * kvd * b;
    const double act = 4.0 * N * (3 * D + 2 * qd + 2 * kvd + 3 * F + c.vocab_size);
    return weights + kv + act + (64 << 20);
  }

  void allocate(Rank<T>& R) {
    const ModelConfig& c = config;
    const TensorParallelShard& s = R.shard;
    const auto N = static_cast<std::size_t>(options.decoder.max_prefill);
    const auto D = static_cast<std::size_t>(c.hidden_size);
    const auto qd = static_cast<std::size_t>(s.q_dim(c.head_dim));
    const auto kvd = static_cast<std::size_t>(s.kv_dim(c.head_dim));
    const auto F = static_cast<std::size_t>(s.ffn);
    const auto cap = static_cast<std::size_t>(options.decoder.capacity);
    R.k_cache = DeviceBuffer<T>(static_cast<std::size_t>(c.num_layers) * cap * kvd);
    R.v_cache = DeviceBuffer<T>(R.k_cache.size());
    R.d_pos = DeviceBuffer<int>(1), R.d_token = DeviceBuffer<int>(1);
    R.d_step = DeviceBuffer<int>(1), R.d_tokens = DeviceBuffer<int>(N);
    R.d_history = DeviceBuffer<int>(cap + 1);
    R.x = DeviceBuffer<float>(N * D), R.h = DeviceBuffer<float>(N * D);
    R.partial = DeviceBuffer<float>(N * D);
    R.qkv = DeviceBuffer<float>(N * (qd + 2 * kvd));
    R.attn = DeviceBuffer<float>(N * qd);
    R.gate_up = DeviceBuffer<float>(N * 2 * F), R.act = DeviceBuffer<float>(N * F);
    R.logits = DeviceBuffer<float>(N * static_cast<std::size_t>(c.vocab_size));
    R.split_scratch = DeviceBuffer<float>(static_cast<std::size_t>(
        attention_split_scratch_floats(s.q_heads, c.head_dim, options.decoder.capacity)));
    if constexpr (!std::is_same_v<T, float>) R.h16 = DeviceBuffer<bf16>(N * std::max({D, qd, F}));
  }

  void on(const Rank<T>& R) const { set_device(R.device); }

  void synchronize_all() {
    for (std::size_t i = 0; i < streams.size(); ++i) {
      set_device(stream_devices[i]);
      streams[i]->synchronize();
    }
    set_device(stream_devices[0]);
  }

  void reset() {
    for (auto& R : ranks) {
      on(*R);
      LAB_CUDA_CHECK(cudaMemsetAsync(R->d_pos.get(), 0, sizeof(int), R->stream));
      LAB_CUDA_CHECK(cudaMemsetAsync(R->d_step.get(), 0, sizeof(int), R->stream));
      LAB_CUDA_CHECK(cudaMemsetAsync(R->d_token.get(), 0, sizeof(int), R->stream));
    }
    synchronize_all();
    length = 0;
  }

  void upload(const ModelWeights& w) {
    validate(w);
    for (auto& Rp : ranks) {
      Rank<T>& R = *Rp;
      on(R);
      const cudaStream_t s = R.stream;
      R.embed = upload_as<T>(w.at("model.embed_tokens.weight").data, s);
      if (!config.tie_word_embeddings) R.lm_head = upload_as<T>(w.at("lm_head.weight").data, s);
      R.final_norm = DeviceBuffer<float>(std::span<const float>(w.at("model.norm.weight").data));
      for (int l = 0; l < config.num_layers; ++l) {
        const LayerShard part = shard_layer(w, l, R.shard);  // host slices of this rank's share
        auto gain = [&](const char* suffix) {
          return DeviceBuffer<float>(
              std::span<const float>(w.at(layer_tensor_name(l, suffix)).data));
        };
        typename Rank<T>::Layer L;
        L.attn_norm = gain("input_layernorm.weight");
        L.mlp_norm = gain("post_attention_layernorm.weight");
        L.w_qkv = upload_as<T>(part.w_qkv, s);
        L.wo = upload_as<T>(part.wo, s);
        L.w_gate_up = upload_as<T>(part.w_gate_up, s);
        L.w_down = upload_as<T>(part.w_down, s);
        R.layers.push_back(std::move(L));
      }
    }
    synchronize_all();
  }

  void randomize(std::uint64_t seed) {
    const ModelConfig& c = config;
    const auto D = static_cast<std::size_t>(c.hidden_size);
    const auto V = static_cast<std::size_t>(c.vocab_size);
    for (auto& Rp : ranks) {
      Rank<T>& R = *Rp;
      on(R);
      const cudaStream_t s = R.stream;
      const TensorParallelShard& sh = R.shard;
      std::uint64_t stream_id = seed * 1000003ULL + static_cast<std::uint64_t>(sh.rank) * 7919ULL;
      auto matrix = [&](std::size_t rows, std::size_t cols, float stddev) {
        DeviceBuffer<T> m(rows * cols);
        fill_random<T>(m.get(), static_cast<std::int64_t>(m.size()), ++stream_id, stddev, 0.0f, s);
        return m;
      };
      const auto qd = static_cast<std::size_t>(sh.q_dim(c.head_dim));
      const auto kvd = static_cast<std::size_t>(sh.kv_dim(c.head_dim));
      const auto F = static_cast<std::size_t>(sh.ffn);
      // Replicated tensors must be equal on every rank: draw them from the same ids (above the
      // per-rank ones, which stay below rank · 7919 + 4 · layers).
      const std::uint64_t shared_id = seed * 1000003ULL + 500000ULL;
      R.embed = DeviceBuffer<T>(V * D);
      fill_random<T>(R.embed.get(), static_cast<std::int64_t>(V * D), shared_id, 1.0f, 0.0f, s);
      if (!c.tie_word_embeddings) {
        R.lm_head = DeviceBuffer<T>(V * D);
        fill_random<T>(R.lm_head.get(), static_cast<std::int64_t>(V * D), shared_id + 1,
                       1.0f / std::sqrt(static_cast<float>(D)), 0.0f, s);
      }
      R.final_norm = DeviceBuffer<float>(D);
      fill_random<float>(R.final_norm.get(), static_cast<std::int64_t>(D), shared_id + 2, 0.1f,
                         1.0f, s);
      for (int l = 0; l < c.num_layers; ++l) {
        typename Rank<T>::Layer L;
        L.attn_norm = DeviceBuffer<float>(D), L.mlp_norm = DeviceBuffer<float>(D);
        fill_random<float>(L.attn_norm.get(), static_cast<std::int64_t>(D), shared_id + 3 + 2 * l,
                           0.1f, 1.0f, s);
        fill_random<float>(L.mlp_norm.get(), static_cast<std::int64_t>(D), shared_id + 4 + 2 * l,
                           0.1f, 1.0f, s);
        L.w_qkv = matrix(qd + 2 * kvd, D, 1.0f / std::sqrt(static_cast<float>(D)));
        L.wo = matrix(D, qd, 1.0f / std::sqrt(static_cast<float>(c.q_dim())));
        L.w_gate_up = matrix(2 * F, D, 1.0f / std::sqrt(static_cast<float>(D)));
        L.w_down = matrix(D, F, 1.0f / std::sqrt(static_cast<float>(c.intermediate_size)));
        R.layers.push_back(std::move(L));
      }
    }
    synchronize_all();
  }

  // y(n, out) = x(n, in) · Wᵀ (+ y), chapter 8's linear on this rank's stream and cuBLAS handle.
  void linear(Rank<T>& R, const T* w, const float* d_x, float* d_y, int n, int in, int out,
              bool accumulate) {
    if (n == 1) {
      gemv<T>(options.decoder.gemv, w, d_x, d_y, out, in, accumulate, R.stream);
    } else if constexpr (std::is_same_v<T, float>) {
      linear_fp32(R.cublas->get(), w, d_x, d_y, n, in, out, accumulate, /*tf32=*/false);
    } else {
      to_bf16(d_x, R.h16.get(), static_cast<std::int64_t>(n) * in, R.stream);
      linear_bf16(R.cublas->get(), w, R.h16.get(), d_y, n, in, out, accumulate);
    }
  }

  //! [tp_attention_half]
  // Rank R's attention half of block l: its heads only, then its o_proj columns → partial (n, D).
  void attention_half(Rank<T>& R, std::size_t l, int n) {
    const ModelConfig& c = config;
    const TensorParallelShard& s = R.shard;
    const cudaStream_t st = R.stream;
    const int D = c.hidden_size, qd = s.q_dim(c.head_dim), kvd = s.kv_dim(c.head_dim);
    const auto& L = R.layers[l];
    const std::size_t cache_layer = static_cast<std::size_t>(options.decoder.capacity) * kvd;
    T* kc = R.k_cache.get() + l * cache_layer;
    T* vc = R.v_cache.get() + l * cache_layer;
    float* q = R.qkv.get();  // (n, q_r), then k (n, kv_r), then v (n, kv_r)
    float* k = q + static_cast<std::size_t>(n) * qd;
    float* v = k + static_cast<std::size_t>(n) * kvd;
    rms_norm(R.x.get(), L.attn_norm.get(), R.h.get(), n, D, c.rms_norm_eps, st);
    if (n == 1) {  // column-parallel q | k | v: one GEMV over this rank's stacked rows
      linear(R, L.w_qkv.get(), R.h.get(), q, 1, D, qd + 2 * kvd, false);
    } else {
      linear(R, L.w_qkv.get(), R.h.get(), q, n, D, qd, false);
      linear(R, L.w_qkv.get() + static_cast<std::size_t>(qd) * D, R.h.get(), k, n, D, kvd, false);
      linear(R, L.w_qkv.get() + static_cast<std::size_t>(qd + kvd) * D, R.h.get(), v, n, D, kvd,
             false);
    }
    apply_rope(q, n, s.q_heads, c.head_dim, R.inv_freq.get(), 0, R.d_pos.get(), st);
    apply_rope(k, n, s.kv_heads, c.head_dim, R.inv_freq.get(), 0, R.d_pos.get(), st);
    kv_append<T>(k, v, kc, vc, n, kvd, R.d_pos.get(), st);
    attention_cached<T>(q, kc, vc, R.attn.get(), n, s.q_heads, s.kv_heads, c.head_dim,
                        R.d_pos.get(), options.decoder.capacity, st, R.split_scratch.get());
    // Row-parallel o_proj: not "x +=" as in chapter 8, but a partial sum the all-reduce completes.
    linear(R, L.wo.get(), R.attn.get(), R.partial.get(), n, qd, D, /*accumulate=*/false);
  }
  //! [tp_attention_half]

  // Rank R's MLP half: its gate and up columns, SwiGLU, its down_proj columns → partial (n, D).
  void mlp_half(Rank<T>& R, std::size_t l, int n) {
    const ModelConfig& c = config;
    const int D = c.hidden_size, F = R.shard.ffn;
    const auto& L = R.layers[l];
    rms_norm(R.x.get(), L.mlp_norm.get(), R.h.get(), n, D, c.rms_norm_eps, R.stream);
    linear(R, L.w_gate_up.get(), R.h.get(), R.gate_up.get(), n, D, 2 * F, false);  // (n, 2F_r)
    swiglu(R.gate_up.get(), R.gate_up.get() + F, R.act.get(), n, F, 2 * F, R.stream);
    linear(R, L.w_down.get(), R.act.get(), R.partial.get(), n, F, D, /*accumulate=*/false);
  }

  //! [tp_forward]
  // n tokens (each rank's own device copy of the ids) through every block: the ranks' halves,
  // each followed by the all-reduce of their partial sums and the residual add. Launches only.
  void launch(bool prompt_ids, int n, bool all_logits) {
    const ModelConfig& c = config;
    const int D = c.hidden_size;
    const auto count = static_cast<std::size_t>(n) * D;
    for (auto& R : ranks) {
      on(*R);
      const int* ids = prompt_ids ? R->d_tokens.get() : R->d_token.get();
      embedding_gather(R->embed.get(), ids, R->x.get(), n, D, R->stream);  // replicated x
    }
    for (std::size_t l = 0; l < static_cast<std::size_t>(c.num_layers); ++l) {
      for (auto& R : ranks) on(*R), attention_half(*R, l, n);
      all_reduce->sum(partials, count, rank_streams);  // Σ_r o_proj_r(attn_r)
      for (auto& R : ranks) {
        on(*R);
        residual_add(R->x.get(), R->partial.get(), static_cast<std::int64_t>(count), R->stream);
        mlp_half(*R, l, n);
      }
      all_reduce->sum(partials, count, rank_streams);  // Σ_r down_r(swiglu_r)
      for (auto& R : ranks) {
        on(*R);
        residual_add(R->x.get(), R->partial.get(), static_cast<std::int64_t>(count), R->stream);
      }
    }
    // Every rank now holds the same x, so each computes the (replicated) logits itself.
    const int rows = all_logits ? n : 1;
    for (auto& R : ranks) {
      on(*R);
      const float* last = R->x.get() + static_cast<std::size_t>(n - rows) * D;
      rms_norm(last, R->final_norm.get(), R->h.get(), rows, D, c.rms_norm_eps, R->stream);
      const T* out = c.tie_word_embeddings ? R->embed.get() : R->lm_head.get();
      linear(*R, out, R->h.get(), R->logits.get(), rows, D, c.vocab_size, false);
      advance_position(R->d_pos.get(), n, R->stream);
    }
    set_device(stream_devices[0]);
  }
  //! [tp_forward]

  void decode_step() {
    launch(false, 1, false);
    for (auto& R : ranks) {
      on(*R);
      argmax(R->logits.get(), config.vocab_size, R->d_token.get(), R->d_history.get(),
             R->d_step.get(), R->stream);
    }
    set_device(stream_devices[0]);
  }

  void run_decode_step(bool use_graph) {
    if (use_graph) {
      if (!decode_graph.ready()) {
        std::vector<cudaStream_t> distinct;
        for (const auto& s : streams) distinct.push_back(s->get());
        decode_graph.capture(stream_devices, distinct, [&] { decode_step(); });
      }
      decode_graph.launch();
      set_device(stream_devices[0]);
    } else {
      decode_step();
    }
  }

  void check_room(int n) const {
    require(n >= 1, "forward: no tokens");
    require(n <= options.decoder.max_prefill, "forward: " + std::to_string(n) +
                                                  " tokens in one call exceed max_prefill " +
                                                  std::to_string(options.decoder.max_prefill));
    require(length + n <= options.decoder.capacity, "context of " + std::to_string(length + n) +
                                                        " tokens exceeds the KV cache capacity " +
                                                        std::to_string(options.decoder.capacity));
  }

  void upload_tokens(std::span<const int> ids) {
    for (int id : ids)
      require(id >= 0 && id < config.vocab_size,
              "token id " + std::to_string(id) + " is outside the vocabulary");
    for (auto& R : ranks) {
      on(*R);
      LAB_CUDA_CHECK(cudaMemcpyAsync(R->d_tokens.get(), ids.data(), ids.size_bytes(),
                                     cudaMemcpyHostToDevice, R->stream));
    }
  }

  std::vector<float> copy_logits(const Rank<T>& R, std::size_t count) const {
    std::vector<float> out(count);
    on(R);
    LAB_CUDA_CHECK(cudaMemcpyAsync(out.data(), R.logits.get(), count * sizeof(float),
                                   cudaMemcpyDeviceToHost, R.stream));
    LAB_CUDA_CHECK(cudaStreamSynchronize(R.stream));
    return out;
  }

  std::vector<float> forward(std::span<const int> ids, bool all_logits) {
    const int n = static_cast<int>(ids.size());
    check_room(n);
    upload_tokens(ids);
    launch(true, n, all_logits);
    synchronize_all();
    length += n;
    last_rows = all_logits ? n : 1;
    return copy_logits(*ranks[0], static_cast<std::size_t>(last_rows) * config.vocab_size);
  }
  int last_rows = 1;

  std::vector<float> rank_logits(int rank) const {
    require(rank >= 0 && rank < static_cast<int>(ranks.size()),
            "rank_logits: rank " + std::to_string(rank) + " does not exist");
    const auto V = static_cast<std::size_t>(config.vocab_size);
    auto all = copy_logits(*ranks[static_cast<std::size_t>(rank)], last_rows * V);
    return {all.end() - static_cast<long>(V), all.end()};
  }

  std::vector<int> generate_greedy(std::span<const int> prompt, int max_new, bool use_graph,
                                   const std::function<bool(int)>& on_token) {
    require(length == 0, "generate_greedy: the KV cache must be empty (call reset)");
    if (max_new <= 0) return {};
    const int n = static_cast<int>(prompt.size());
    check_room(n);
    require(n + max_new - 1 <= options.decoder.capacity,
            "prompt (" + std::to_string(n) + ") + new tokens (" + std::to_string(max_new) +
                ") exceed the KV cache capacity " + std::to_string(options.decoder.capacity));
    upload_tokens(prompt);
    launch(true, n, false);  // prefill
    for (auto& R : ranks) {
      on(*R);
      argmax(R->logits.get(), config.vocab_size, R->d_token.get(), R->d_history.get(),
             R->d_step.get(), R->stream);
    }
    length += n;
    Rank<T>& first = *ranks[0];
    std::vector<int> out;
    auto emit = [&]() {
      int token = 0;
      on(first);
      LAB_CUDA_CHECK(cudaMemcpyAsync(&token, first.d_token.get(), sizeof(int),
                                     cudaMemcpyDeviceToHost, first.stream));
      LAB_CUDA_CHECK(cudaStreamSynchronize(first.stream));
      out.push_back(token);
      return on_token(token);
    };
    if (on_token && !emit()) return finish(out);
    for (int i = 1; i < max_new; ++i) {
      run_decode_step(use_graph);
      ++length;
      if (on_token && !emit()) return finish(out);
    }
    if (!on_token) {  // one copy of the whole history at the end
      std::vector<int> history(static_cast<std::size_t>(max_new));
      on(first);
      LAB_CUDA_CHECK(cudaMemcpyAsync(history.data(), first.d_history.get(),
                                     history.size() * sizeof(int), cudaMemcpyDeviceToHost,
                                     first.stream));
      out = history;
    }
    return finish(out);
  }
  std::vector<int> finish(std::vector<int> out) {
    synchronize_all();
    return out;
  }

  TimingStats time_decode(int steps, int warmup, bool use_graph) {
    require(length >= 1, "time_decode: run a prefill first");
    require(length + warmup + steps <= options.decoder.capacity,
            "time_decode: not enough room left in the KV cache");
    const int saved = length;
    for (auto& R : ranks) {
      on(*R);
      LAB_CUDA_CHECK(cudaMemsetAsync(R->d_step.get(), 0, sizeof(int), R->stream));
    }
    set_device(stream_devices[0]);
    TimingStats stats = time_on_device(
        ranks[0]->stream, [&] { run_decode_step(use_graph); }, warmup, steps);
    synchronize_all();
    // Roll every rank's cache back: the rows written past `saved` become invisible again.
    for (auto& R : ranks) {
      on(*R);
      LAB_CUDA_CHECK(
          cudaMemcpyAsync(R->d_pos.get(), &saved, sizeof(int), cudaMemcpyHostToDevice, R->stream));
      LAB_CUDA_CHECK(cudaMemsetAsync(R->d_step.get(), 0, sizeof(int), R->stream));
    }
    synchronize_all();
    return stats;
  }

  TimingStats time_step_all_reduces(int warmup, int repeats) {
    const auto count = static_cast<std::size_t>(config.hidden_size);  // one token's residual
    set_device(stream_devices[0]);
    TimingStats stats = time_on_device(
        ranks[0]->stream,
        [&] {
          for (int i = 0; i < 2 * config.num_layers; ++i)
            all_reduce->sum(partials, count, rank_streams);
          set_device(stream_devices[0]);
        },
        warmup, repeats);
    synchronize_all();
    return stats;
  }

  double decode_bytes_per_gpu(int context) const {
    // Arithmetic and the all-reduce carry fp32 activations; only the bytes matter here.
    return tensor_parallel_decode_cost(config, options.world_size, context,
                                       storage_dtype(options.decoder.precision), DType::FP32,
                                       hardware_preset("h100"), interconnect_preset("nvlink4"))
        .bytes_per_gpu;
  }
};

struct TensorParallelDecoder::Impl {
  std::unique_ptr<TensorParallelImpl<float>> fp32;
  std::unique_ptr<TensorParallelImpl<bf16>> bf16;
  template <typename F>
  decltype(auto) visit(F&& f) {
    if (fp32) return f(*fp32);
    return f(*bf16);
  }
  template <typename F>
  decltype(auto) visit(F&& f) const {
    if (fp32) {
      const auto& d = *fp32;
      return f(d);
    }
    const auto& d = *bf16;
    return f(d);
  }
};

TensorParallelDecoder::TensorParallelDecoder(const ModelWeights& weights,
                                             const TensorParallelOptions& options)
    : impl_(std::make_unique<Impl>()) {
  if (options.decoder.precision == DecoderPrecision::FP32) {
    impl_->fp32 = std::make_unique<TensorParallelImpl<float>>(weights.config, options);
    impl_->fp32->upload(weights);
  } else {
    impl_->bf16 = std::make_unique<TensorParallelImpl<bf16>>(weights.config, options);
    impl_->bf16->upload(weights);
  }
}

TensorParallelDecoder::TensorParallelDecoder(const ModelConfig& config, std::uint64_t seed,
                                             const TensorParallelOptions& options)
    : impl_(std::make_unique<Impl>()) {
  if (options.decoder.precision == DecoderPrecision::FP32) {
    impl_->fp32 = std::make_unique<TensorParallelImpl<float>>(config, options);
    impl_->fp32->randomize(seed);
  } else {
    impl_->bf16 = std::make_unique<TensorParallelImpl<bf16>>(config, options);
    impl_->bf16->randomize(seed);
  }
}

TensorParallelDecoder::~TensorParallelDecoder() = default;

const ModelConfig& TensorParallelDecoder::config() const {
  return impl_->fp32 ? impl_->fp32->config : impl_->bf16->config;
}
const TensorParallelOptions& TensorParallelDecoder::options() const {
  return impl_->fp32 ? impl_->fp32->options : impl_->bf16->options;
}
int TensorParallelDecoder::world_size() const {
  return options().world_size;
}
std::string TensorParallelDecoder::all_reduce_name() const {
  return impl_->visit([](const auto& d) { return d.all_reduce->name(); });
}
const TensorParallelShard& TensorParallelDecoder::shard(int rank) const {
  require(rank >= 0 && rank < world_size(),
          "shard: rank " + std::to_string(rank) + " does not exist");
  return impl_->fp32 ? impl_->fp32->ranks[static_cast<std::size_t>(rank)]->shard
                     : impl_->bf16->ranks[static_cast<std::size_t>(rank)]->shard;
}
int TensorParallelDecoder::length() const {
  return impl_->fp32 ? impl_->fp32->length : impl_->bf16->length;
}
void TensorParallelDecoder::reset() {
  impl_->visit([](auto& d) { d.reset(); });
}
std::vector<float> TensorParallelDecoder::forward(std::span<const int> tokens, bool all_logits) {
  return impl_->visit([&](auto& d) { return d.forward(tokens, all_logits); });
}
std::vector<float> TensorParallelDecoder::rank_logits(int rank) const {
  return impl_->visit([&](const auto& d) { return d.rank_logits(rank); });
}
std::vector<int> TensorParallelDecoder::generate_greedy(std::span<const int> prompt,
                                                        int max_new_tokens, bool use_graph,
                                                        const std::function<bool(int)>& on_token) {
  return impl_->visit(
      [&](auto& d) { return d.generate_greedy(prompt, max_new_tokens, use_graph, on_token); });
}
TimingStats TensorParallelDecoder::time_decode(int steps, int warmup, bool use_graph) {
  return impl_->visit([&](auto& d) { return d.time_decode(steps, warmup, use_graph); });
}
TimingStats TensorParallelDecoder::time_step_all_reduces(int warmup, int repeats) {
  return impl_->visit([&](auto& d) { return d.time_step_all_reduces(warmup, repeats); });
}
double TensorParallelDecoder::decode_bytes_per_gpu(int context) const {
  return impl_->visit([&](const auto& d) { return d.decode_bytes_per_gpu(context); });
}

}  // namespace lab::cuda
