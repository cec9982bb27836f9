// Chapter 12's decoder against chapter 8's: one rank through NCCL (the code path every multi-GPU
// run takes), N ranks emulated on one GPU (the sharding, validated without N GPUs), and N real
// GPUs when the machine has them. fp32 within the reordered-sum tolerance, bf16 within the bf16
// storage tolerance, greedy tokens identical.
// ctest-labels: chapter
// lab-link: lab_cuda_tp
#include <gtest/gtest.h>

#include <string>

#include "common/compare.hpp"
#include "common/cost_model.hpp"
#include "common/error.hpp"
#include "common/random.hpp"
#include "common/weights.hpp"
#include "cuda/buffer.hpp"
#include "cuda/decoder.hpp"
#include "cuda/resources.hpp"
#include "cuda/tensor_parallel.hpp"
#include "gpu_test.hpp"

using namespace lab;
using cuda::DecoderPrecision;

namespace {

std::vector<int> random_tokens(Rng& rng, int n, int vocab) {
  std::vector<int> t(static_cast<std::size_t>(n));
  for (int& x : t) x = static_cast<int>(rng.below(static_cast<std::uint64_t>(vocab)));
  return t;
}

ModelConfig shape(int heads, int kv_heads, int head_dim, int ffn, int vocab, int layers) {
  ModelConfig c = preset("tiny");
  c.name = "H" + std::to_string(heads) + "/Hkv" + std::to_string(kv_heads);
  c.num_heads = heads, c.num_kv_heads = kv_heads, c.head_dim = head_dim;
  c.hidden_size = heads * head_dim, c.intermediate_size = ffn, c.vocab_size = vocab;
  c.num_layers = layers, c.bos_token_id = c.eos_token_id = -1;
  validate(c);
  return c;
}

// tiny (GQA 4/2: replicated KV heads at N = 4) and shapes that split over 2 and 4 with
// head_dim a multiple of 8 (the 16-byte GEMV path) and not (its fallback). Under the sanitizers
// (small_test_scale) tiny and the fallback only: each kernel still runs, on fewer shapes.
std::vector<ModelWeights> test_models() {
  std::vector<ModelWeights> models;
  models.push_back(random_weights(preset("tiny"), 1234));
  if (!small_test_scale()) {
    models.push_back(random_weights(shape(8, 8, 16, 8 * 44, 301, 3), 5));  // MHA
    models.push_back(random_weights(shape(8, 2, 32, 4 * 97, 203, 2), 6));  // GQA 8/2, odd F / 4
  }
  models.push_back(random_weights(shape(4, 1, 12, 4 * 33, 131, 2), 7));  // MQA, head_dim 12
  return models;
}

Tolerance tolerance(const ModelConfig& c, DecoderPrecision p) {
  // fp32: the o_proj and down_proj sums are added in another order (and after the GEMV, not in
  // it): a reduction of length max(D, F) per layer. bf16: that reordering can flip the bf16
  // rounding of an activation or a cached key, so the bound is bf16 storage's (Appendix C).
  if (p == DecoderPrecision::FP32)
    return tolerance_for(DType::FP32, std::max(c.hidden_size, c.intermediate_size),
                         c.num_layers + 1);
  return storage_tolerance(DType::BF16, c.num_layers + 1);
}

// Prompt logits (all positions), 8 teacher-forced decode steps and 12 greedy tokens (with and
// without CUDA graphs) of the tensor-parallel decoder against chapter 8's on the same weights.
void expect_matches_chapter8(const ModelWeights& w, int world_size, bool emulate,
                             DecoderPrecision p) {
  SCOPED_TRACE(w.config.name + " N=" + std::to_string(world_size) +
               (emulate ? " emulated " : " nccl ") + cuda::to_string(p));
  Rng rng(static_cast<std::uint64_t>(world_size) * 31 + 7);
  const auto prompt = random_tokens(rng, 11, w.config.vocab_size);
  const int max_new = 12;
  cuda::DecoderOptions d;
  d.precision = p;
  d.capacity = 11 + max_new;
  cuda::Decoder ch08(w, d);
  cuda::TensorParallelOptions o;
  o.world_size = world_size;
  o.emulate = emulate;
  o.decoder = d;
  cuda::TensorParallelDecoder tp(w, o);
  ASSERT_EQ(tp.world_size(), world_size);
  EXPECT_EQ(tp.all_reduce_name(), emulate ? "emulated" : "nccl");
  const Tolerance tol = tolerance(w.config, p);
  const auto V = static_cast<std::size_t>(w.config.vocab_size);

  const auto ref_prompt = ch08.forward(prompt, /*all_logits=*/true);
  const auto got_prompt = tp.forward(prompt, /*all_logits=*/true);
  const auto r = compare(ref_prompt, got_prompt, tol, V);
  EXPECT_TRUE(r.passed) << "prefill: " << summary(r);
  for (int step = 0; step < 8; ++step) {
    const int token = static_cast<int>(rng.below(V));
    const auto ref = ch08.forward(std::span<const int>(&token, 1));
    const auto got = tp.forward(std::span<const int>(&token, 1));
    const auto rs = compare(ref, got, tol, V);
    EXPECT_TRUE(rs.passed) << "decode step " << step << ": " << summary(rs);
    // The all-reduce leaves every rank the same residual stream, so the same logits, bit for bit.
    for (int k = 1; k < world_size; ++k) EXPECT_EQ(tp.rank_logits(k), got) << "rank " << k;
  }
  EXPECT_EQ(tp.length(), 19);

  ch08.reset();
  const auto expected = ch08.generate_greedy(prompt, max_new, true);
  for (bool graph : {true, false}) {
    tp.reset();
    EXPECT_EQ(tp.generate_greedy(prompt, max_new, graph), expected) << "graph " << graph;
  }
  // on_token sees every token and can stop early.
  tp.reset();
  std::vector<int> seen;
  const auto stopped = tp.generate_greedy(prompt, max_new, true, [&](int t) {
    seen.push_back(t);
    return seen.size() < 5;
  });
  EXPECT_EQ(stopped, std::vector<int>(expected.begin(), expected.begin() + 5));
}

}  // namespace

TEST(TensorParallel, OneRankThroughNcclEqualsChapter8) {
  LAB_REQUIRE_GPU();
  for (const ModelWeights& w : test_models())
    for (DecoderPrecision p : {DecoderPrecision::FP32, DecoderPrecision::BF16})
      expect_matches_chapter8(w, 1, /*emulate=*/false, p);
}

TEST(TensorParallel, EmulatedRanksOnOneGpuEqualChapter8) {
  LAB_REQUIRE_GPU();
  for (const ModelWeights& w : test_models())
    for (int n : {2, 4})
      for (DecoderPrecision p : {DecoderPrecision::FP32, DecoderPrecision::BF16})
        expect_matches_chapter8(w, n, /*emulate=*/true, p);
}

TEST(TensorParallel, RealGpusEqualChapter8) {
  LAB_REQUIRE_GPU();
  const int gpus = cuda::visible_gpu_count();
  if (gpus < 2) GTEST_SKIP() << "needs 2 GPUs, " << gpus << " visible";
  for (const ModelWeights& w : test_models())
    for (int n : {2, 4})
      if (n <= gpus)
        for (DecoderPrecision p : {DecoderPrecision::FP32, DecoderPrecision::BF16})
          expect_matches_chapter8(w, n, /*emulate=*/false, p);
}

TEST(TensorParallel, MoreGpusThanVisibleIsAClearError) {
  LAB_REQUIRE_GPU();
  const int n = cuda::visible_gpu_count() + 1;
  const ModelWeights w = random_weights(shape(n, 1, 8, 3 * n, 97, 1), 3);  // splits over n
  cuda::TensorParallelOptions o;
  o.world_size = n;
  o.decoder.capacity = 8;
  try {
    cuda::TensorParallelDecoder tp(w, o);
    FAIL() << "no error for " << n << " GPUs";
  } catch (const Error& e) {
    const std::string text = e.what();
    EXPECT_NE(
        text.find("over " + std::to_string(n) + " GPUs, but " + std::to_string(n - 1) + " visible"),
        std::string::npos)
        << text;
    EXPECT_NE(text.find("--emulate"), std::string::npos) << text;
  }
  o.emulate = true;  // the same ranks on one GPU are fine
  EXPECT_NO_THROW({ cuda::TensorParallelDecoder tp(w, o); });
}

TEST(TensorParallel, ShapesThatDoNotSplitAndBadInputAreRejected) {
  LAB_REQUIRE_GPU();
  const ModelWeights w = random_weights(preset("tiny"), 1);
  cuda::TensorParallelOptions o;
  o.world_size = 3;  // 4 heads do not split over 3
  o.emulate = true;
  EXPECT_THROW({ cuda::TensorParallelDecoder tp(w, o); }, Error);
  o.world_size = 2;
  o.decoder.capacity = 4;
  cuda::TensorParallelDecoder tp(w, o);
  const std::vector<int> too_long = {1, 2, 3, 4, 5};
  EXPECT_THROW(tp.forward(too_long), Error);
  const std::vector<int> bad_id = {300};
  EXPECT_THROW(tp.forward(bad_id), Error);
  EXPECT_THROW(tp.rank_logits(2), Error);
  EXPECT_THROW(tp.shard(-1), Error);
}

TEST(TensorParallel, BytesPerGpuAtOneRankAreChapter8s) {
  LAB_REQUIRE_GPU();
  for (const char* name : {"tiny", "smollm2-135m"}) {
    const ModelConfig c = preset(name);
    cuda::DecoderOptions d;
    d.capacity = 64;
    cuda::Decoder ch08(c, 1, d);
    cuda::TensorParallelOptions o;
    o.decoder = d;
    cuda::TensorParallelDecoder tp(c, 1, o);
    EXPECT_NEAR(tp.decode_bytes_per_gpu(40), ch08.decode_bytes(40), 1e-9 * ch08.decode_bytes(40))
        << name;
  }
}

TEST(TensorParallel, AllReduceSumsEveryRanksBuffer) {
  LAB_REQUIRE_GPU();
  // The emulated all-reduce on its own: rank r's buffer holds r + i; afterwards every rank must
  // hold Σ_r (r + i) = N·i + N(N−1)/2.
  const int N = 3;
  const std::size_t count = 1000;
  std::vector<cuda::DeviceBuffer<float>> buffers;
  std::vector<float*> pointers;
  for (int r = 0; r < N; ++r) {
    std::vector<float> host(count);
    for (std::size_t i = 0; i < count; ++i) host[i] = static_cast<float>(r) + static_cast<float>(i);
    buffers.emplace_back(std::span<const float>(host));
    pointers.push_back(buffers.back().get());
  }
  cuda::Stream stream;
  const auto reduce = cuda::make_emulated_all_reduce(N);
  reduce->sum(pointers, count, std::vector<cudaStream_t>(N, stream.get()));
  stream.synchronize();
  for (int r = 0; r < N; ++r) {
    const auto got = buffers[static_cast<std::size_t>(r)].download();
    for (std::size_t i = 0; i < count; ++i)
      ASSERT_EQ(got[i], static_cast<float>(N * i + N * (N - 1) / 2)) << "rank " << r << " i " << i;
  }
  cuda::Stream other;
  std::vector<cudaStream_t> mixed(N, stream.get());
  mixed[1] = other.get();
  EXPECT_THROW(reduce->sum(pointers, count, mixed), Error);
  // NCCL with one rank: the sum of one buffer is itself.
  const auto nccl = cuda::make_nccl_all_reduce({0});
  const auto before = buffers[0].download();
  nccl->sum({pointers[0]}, count, {stream.get()});
  stream.synchronize();
  EXPECT_EQ(buffers[0].download(), before);
}
