// The shared cost model: the seed's worked numbers, KV-cache sizes, and properties that any
// correct count must have (decode reads the weights once; FLOPs ≈ 2 × params per token; ...).
#include <gtest/gtest.h>

#include <cmath>

#include "common/cost_model.hpp"
#include "common/error.hpp"

namespace {
double find(const std::vector<lab::OpCost>& ops, const std::string& name,
            double lab::OpCost::*field) {
  for (const auto& op : ops)
    if (op.name == name) return op.*field;
  ADD_FAILURE() << "no op " << name;
  return 0;
}
}  // namespace

TEST(CostModel, SeedWorkedExample) {
  const auto op = lab::matmul_cost(1, 4096, 11008, lab::DType::FP16);
  EXPECT_EQ(op.flops, 90177536.0);
  EXPECT_EQ(op.bytes(), 90207744.0);
  EXPECT_NEAR(op.intensity(), 0.9997, 5e-5);
  EXPECT_NEAR(lab::hardware_preset("h100").ridge(), 295.2, 0.05);
  EXPECT_EQ(lab::classify(op.intensity(), lab::hardware_preset("h100")), lab::Bound::Memory);
}

TEST(CostModel, SeedBatchSweep) {
  const lab::Hardware h100 = lab::hardware_preset("h100");
  const std::pair<int, double> seed[] = {
      {1, 1.0}, {16, 15.9}, {64, 62.7}, {256, 235.8}, {512, 437.0}};
  for (auto [B, I] : seed) {
    const auto op = lab::matmul_cost(B, 4096, 11008, lab::DType::FP16);
    EXPECT_NEAR(op.intensity(), I, 0.05) << "B=" << B;
    EXPECT_EQ(lab::classify(op.intensity(), h100),
              B < 512 ? lab::Bound::Memory : lab::Bound::Compute);
  }
}

TEST(CostModel, CrossoverIsExact) {
  const lab::Hardware h100 = lab::hardware_preset("h100");
  const auto B = lab::crossover_batch(4096, 11008, lab::DType::FP16, h100);
  ASSERT_TRUE(B.has_value());
  EXPECT_GE(lab::matmul_cost(*B, 4096, 11008, lab::DType::FP16).intensity(), h100.ridge());
  EXPECT_LT(lab::matmul_cost(*B - 1, 4096, 11008, lab::DType::FP16).intensity(), h100.ridge());
  EXPECT_FALSE(lab::crossover_batch(64, 64, lab::DType::FP32, h100).has_value());
}

TEST(CostModel, KvCacheBytesPerToken) {
  EXPECT_EQ(lab::kv_cache_bytes_per_token(lab::preset("llama2-7b"), lab::DType::FP16), 512 * 1024);
  EXPECT_EQ(lab::kv_cache_bytes_per_token(lab::preset("smollm2-135m"), lab::DType::FP16), 23040);
  EXPECT_EQ(lab::kv_cache_bytes_per_token(lab::preset("llama3-8b"), lab::DType::BF16), 128 * 1024);
  EXPECT_EQ(lab::kv_cache_bytes_per_token(lab::preset("tiny"), lab::DType::FP32),
            2 * 2 * 2 * 16 * 4);
}

TEST(CostModel, ContextThatFits) {
  const auto c = lab::preset("llama2-7b");
  const auto n = lab::max_cached_tokens(c, lab::DType::FP16, 80e9);
  const double used = lab::weight_bytes(c, lab::DType::FP16) + static_cast<double>(n) * 524288.0;
  EXPECT_LE(used, 80e9);
  EXPECT_GT(used + 524288.0, 80e9);
  EXPECT_EQ(lab::max_cached_tokens(c, lab::DType::FP32, 10e9), 0);  // 27 GB of weights do not fit
}

TEST(CostModel, DecodeReadsEveryWeightOnceWhateverTheBatch) {
  for (const auto& name : lab::preset_names()) {
    const auto c = lab::preset(name);
    for (int B : {1, 8, 64}) {
      const auto ops = lab::model_costs(c, lab::decode_workload(100, B, lab::DType::BF16));
      const lab::OpCost sum = lab::total(ops);
      // Every weight is read once, plus the KV cache of B sequences, plus activations. An untied
      // embedding table is only gathered (B rows), not read whole.
      const double table = c.tie_word_embeddings ? 0.0 : 2.0 * c.vocab_size * c.hidden_size;
      const double weights = lab::weight_bytes(c, lab::DType::BF16) - table;
      const double kv = static_cast<double>(B) * 101.0 *
                        static_cast<double>(lab::kv_cache_bytes_per_token(c, lab::DType::BF16));
      EXPECT_GE(sum.bytes_read, weights + kv) << name << " B=" << B;
      EXPECT_LT(sum.bytes_read, 1.05 * (weights + kv) + 1e6 * B) << name << " B=" << B;
    }
  }
}

TEST(CostModel, FlopsAreTwicePerParameterPerTokenPlusAttention) {
  // Kaplan's rule: a forward pass costs ≈ 2 N FLOPs per token (N = non-embedding parameters plus
  // the output projection), plus the attention terms 4 · layers · tokens · context · q_dim.
  const auto c = lab::preset("llama2-7b");
  const std::int64_t T = 256;
  auto w = lab::prefill_workload(T, 1, lab::DType::BF16);
  w.all_logits = true;
  const lab::OpCost sum = lab::total(lab::model_costs(c, w));
  const double embedding = static_cast<double>(c.vocab_size) * c.hidden_size;
  const double matmul_params =
      static_cast<double>(c.parameter_count()) - embedding;  // untied: lm_head stays
  const double attention =
      4.0 * c.num_layers * static_cast<double>(lab::causal_pairs(T, 0)) * c.q_dim();
  const double predicted = 2.0 * matmul_params * T + attention;
  EXPECT_NEAR(sum.flops / predicted, 1.0, 0.01);  // element-wise ops are well under 1%
}

TEST(CostModel, PrefillIsComputeBoundAndDecodeMemoryBound) {
  const auto h100 = lab::hardware_preset("h100");
  auto prefill = lab::prefill_workload(2048, 1, lab::DType::BF16);
  prefill.fused_attention = true;
  for (const auto& name : {"llama2-7b", "llama3-8b"}) {
    const auto c = lab::preset(name);
    EXPECT_EQ(lab::classify(lab::total(lab::model_costs(c, prefill)).intensity(), h100),
              lab::Bound::Compute);
    EXPECT_EQ(lab::classify(
                  lab::total(lab::model_costs(c, lab::decode_workload(2048, 1, lab::DType::BF16)))
                      .intensity(),
                  h100),
              lab::Bound::Memory);
  }
}

TEST(CostModel, AttentionGrowsWithContextAndFusionRemovesScoreTraffic) {
  const auto c = lab::preset("tiny");
  auto a = lab::decode_workload(10, 1, lab::DType::FP32);
  auto b = lab::decode_workload(100, 1, lab::DType::FP32);
  const auto ops_a = lab::layer_costs(c, a), ops_b = lab::layer_costs(c, b);
  EXPECT_NEAR(find(ops_b, "attention_scores", &lab::OpCost::flops) /
                  find(ops_a, "attention_scores", &lab::OpCost::flops),
              101.0 / 11.0, 1e-9);
  b.fused_attention = true;
  const auto fused = lab::layer_costs(c, b);
  EXPECT_EQ(find(fused, "softmax", &lab::OpCost::bytes_read), 0.0);
  EXPECT_LT(find(fused, "attention_values", &lab::OpCost::bytes_read),
            find(ops_b, "attention_values", &lab::OpCost::bytes_read));
}

TEST(CostModel, CausalPairs) {
  EXPECT_EQ(lab::causal_pairs(1, 0), 1);
  EXPECT_EQ(lab::causal_pairs(4, 0), 10);
  EXPECT_EQ(lab::causal_pairs(1, 99), 100);
  EXPECT_EQ(lab::causal_pairs(3, 5), 3 * 5 + 6);
}

TEST(CostModel, RejectsBadWorkloadsAndHardware) {
  const auto c = lab::preset("tiny");
  auto w = lab::decode_workload(10, 0, lab::DType::FP32);
  EXPECT_THROW(lab::layer_costs(c, w), lab::Error);
  w = lab::decode_workload(-1, 1, lab::DType::FP32);
  EXPECT_THROW(lab::layer_costs(c, w), lab::Error);
  EXPECT_THROW(lab::hardware_preset("h800"), lab::Error);
  EXPECT_THROW(lab::parse_dtype("fp17"), lab::Error);
}

// --- Tensor parallelism (chapter 12) ------------------------------------------------------------

TEST(CostModel, RingAllReduceMovesTwoNMinusOneOverNOfThePayload) {
  // Pure bandwidth (no latency): 2(N−1)/N of the payload crosses each GPU's link.
  const lab::Interconnect wire{"test", 100e9, 0.0, 0.0};
  EXPECT_EQ(lab::ring_all_reduce_seconds(1e6, 1, wire), 0.0);
  EXPECT_DOUBLE_EQ(lab::ring_all_reduce_seconds(1e6, 2, wire), 1e6 / 100e9);
  EXPECT_DOUBLE_EQ(lab::ring_all_reduce_seconds(1e6, 8, wire), 2.0 * 7 / 8 * 1e6 / 100e9);
  // Pure latency: 2(N−1) ring steps after the base.
  const lab::Interconnect slow{"test", 1e30, 5e-6, 1e-6};
  EXPECT_NEAR(lab::ring_all_reduce_seconds(1.0, 4, slow), 5e-6 + 6e-6, 1e-15);
  EXPECT_THROW(lab::ring_all_reduce_seconds(1.0, 0, slow), lab::Error);
  EXPECT_THROW(lab::interconnect_preset("infiniband-9000"), lab::Error);
  for (const auto& name : lab::interconnect_names())
    EXPECT_GT(lab::interconnect_preset(name).bandwidth, 0.0) << name;
}

TEST(CostModel, TensorParallelAtOneGpuIsTheSingleGpuDecodeStep) {
  const auto hw = lab::hardware_preset("h100");
  const auto link = lab::interconnect_preset("nvlink4");
  for (const char* name : {"llama2-7b", "llama3-8b", "llama2-70b"}) {
    const auto c = lab::preset(name);
    const auto t =
        lab::tensor_parallel_decode_cost(c, 1, 512, lab::DType::BF16, lab::DType::FP32, hw, link);
    // Every parameter once (the embedding table is only gathered: one row), the fp32 norm gains
    // counted at 4 bytes, and the KV cache of 512 tokens.
    const double table = 2.0 * c.vocab_size * c.hidden_size;
    const double norms = (2.0 * c.num_layers + 1) * c.hidden_size;  // 2 more bytes each in fp32
    const double expected = lab::weight_bytes(c, lab::DType::BF16) - table + 2.0 * c.hidden_size +
                            2.0 * norms +
                            512.0 * lab::kv_cache_bytes_per_token(c, lab::DType::BF16);
    EXPECT_NEAR(t.bytes_per_gpu, expected, 1e-9 * expected) << name;
    EXPECT_EQ(t.all_reduce_seconds, 0.0) << name;
    EXPECT_EQ(t.all_reduce_bytes_per_gpu, 0.0) << name;
    EXPECT_EQ(t.all_reduces, 2 * c.num_layers) << name;
    EXPECT_DOUBLE_EQ(t.step_seconds, t.bytes_per_gpu / hw.bandwidth) << name;
  }
}

TEST(CostModel, TensorParallelShardsWeightsAndKvButNotTheReplicatedParts) {
  const auto hw = lab::hardware_preset("h100");
  const auto link = lab::interconnect_preset("nvlink4");
  const auto c = lab::preset("llama2-70b");  // Hkv = 8
  const auto one =
      lab::tensor_parallel_decode_cost(c, 1, 1000, lab::DType::BF16, lab::DType::FP32, hw, link);
  for (int n : {2, 4, 8}) {
    const auto t =
        lab::tensor_parallel_decode_cost(c, n, 1000, lab::DType::BF16, lab::DType::FP32, hw, link);
    EXPECT_NEAR(t.sharded_weight_bytes * n, one.sharded_weight_bytes, 1e-9 * one.bytes_per_gpu);
    EXPECT_NEAR(t.kv_bytes * n, one.kv_bytes, 1e-9 * one.kv_bytes);
    EXPECT_EQ(t.replicated_bytes, one.replicated_bytes);
    // 2 all-reduces per layer of D fp32 values; each GPU sends 2(N−1)/N of each.
    EXPECT_DOUBLE_EQ(t.all_reduce_payload, 8192.0 * 4);
    EXPECT_DOUBLE_EQ(t.all_reduce_bytes_per_gpu, 160 * 2.0 * (n - 1) / n * 8192 * 4);
    EXPECT_DOUBLE_EQ(t.step_seconds, t.memory_seconds + t.all_reduce_seconds);
    // Faster than one GPU, but never N times: the replicated bytes and the all-reduces stay.
    EXPECT_LT(t.step_seconds, one.step_seconds);
    EXPECT_GT(t.step_seconds * n, one.step_seconds);
  }
  // Beyond Hkv ranks each GPU keeps one whole (replicated) KV head: the KV share stops shrinking.
  const auto eight =
      lab::tensor_parallel_decode_cost(c, 8, 1000, lab::DType::BF16, lab::DType::FP32, hw, link);
  const auto sixteen =
      lab::tensor_parallel_decode_cost(c, 16, 1000, lab::DType::BF16, lab::DType::FP32, hw, link);
  EXPECT_EQ(sixteen.kv_bytes, eight.kv_bytes);
  // Everything else halves; the one K and one V head (2 · 128 rows of D per layer) do not.
  const double kv_rows = 80.0 * 2 * 128 * 8192 * 2;  // layers · (K, V) · rows · D · bf16 bytes
  EXPECT_NEAR(sixteen.sharded_weight_bytes * 2 - eight.sharded_weight_bytes, kv_rows, 1.0);
}

TEST(CostModel, TensorParallelRejectsShapesThatDoNotSplit) {
  const auto hw = lab::hardware_preset("h100");
  const auto link = lab::interconnect_preset("nvlink4");
  const auto c = lab::preset("llama2-7b");  // H = 32, F = 11008 = 2^8 · 43
  EXPECT_THROW(
      lab::tensor_parallel_decode_cost(c, 3, 10, lab::DType::BF16, lab::DType::FP32, hw, link),
      lab::Error);
  EXPECT_THROW(
      lab::tensor_parallel_decode_cost(c, 0, 10, lab::DType::BF16, lab::DType::FP32, hw, link),
      lab::Error);
  EXPECT_THROW(
      lab::tensor_parallel_decode_cost(c, 2, -1, lab::DType::BF16, lab::DType::FP32, hw, link),
      lab::Error);
}
