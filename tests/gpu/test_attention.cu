// Attention kernels against a double-precision CPU attention: the naive kernel with its
// materialised scores (chapter 6), and the cached kernel with the KV-cache append (chapter 8), in
// prefill and decode shapes, fp32 and bf16 caches, with grouped-query heads.
#include <cmath>

#include "cuda/resources.hpp"
#include "kernel_test_util.hpp"

using namespace lab;
using namespace lab::cuda;
using lab::test::expect_close;
using lab::test::random_vector;

namespace {

// Causal GQA attention of n queries at positions past..past+n-1 over keys 0..past+n-1.
// q (n, H·d), k, v (keys, Hkv·d).
std::vector<float> reference_attention(const std::vector<float>& q, const std::vector<float>& k,
                                       const std::vector<float>& v, int n, int past, int H, int Hkv,
                                       int d) {
  std::vector<float> out(static_cast<std::size_t>(n) * H * d);
  for (int i = 0; i < n; ++i)
    for (int h = 0; h < H; ++h) {
      const int g = h / (H / Hkv), keys = past + i + 1;
      std::vector<double> s(static_cast<std::size_t>(keys));
      double m = -INFINITY, sum = 0;
      for (int j = 0; j < keys; ++j) {
        double dot = 0;
        for (int t = 0; t < d; ++t)
          dot += double(q[(i * H + h) * d + t]) * k[(j * Hkv + g) * d + t];
        s[j] = dot / std::sqrt(double(d));
        m = std::max(m, s[j]);
      }
      for (double& e : s) sum += (e = std::exp(e - m));
      for (int t = 0; t < d; ++t) {
        double acc = 0;
        for (int j = 0; j < keys; ++j) acc += s[j] * v[(j * Hkv + g) * d + t];
        out[(i * H + h) * d + t] = static_cast<float>(acc / sum);
      }
    }
  return out;
}

}  // namespace

TEST(Kernels, AttentionNaive) {
  LAB_REQUIRE_GPU();
  Rng rng(31);
  for (int trial = 0; trial < 4; ++trial) {
    const int Hkv = 1 + static_cast<int>(rng.below(3)),
              H = Hkv * (1 + static_cast<int>(rng.below(3)));
    const int d = 2 * (4 + static_cast<int>(rng.below(60))),
              n = 1 + static_cast<int>(rng.below(150));
    const auto q = random_vector(rng, static_cast<std::size_t>(n) * H * d);
    const auto k = random_vector(rng, static_cast<std::size_t>(n) * Hkv * d);
    const auto v = random_vector(rng, static_cast<std::size_t>(n) * Hkv * d);
    DeviceBuffer<float> d_q{std::span<const float>(q)}, d_k{std::span<const float>(k)},
        d_v{std::span<const float>(v)};
    DeviceBuffer<float> d_s(static_cast<std::size_t>(H) * n * n), d_o(q.size());
    d_o.fill_bytes(0xFF);
    attention_naive(d_q.get(), d_k.get(), d_v.get(), d_s.get(), d_o.get(), n, H, Hkv, d, nullptr);
    expect_close(reference_attention(q, k, v, n, 0, H, Hkv, d), d_o.download(),
                 tolerance_for(DType::FP32, std::max(n, d)), "attention_naive");
  }
}

template <typename T>
void check_cached_attention(std::uint64_t seed) {
  Rng rng(seed);
  const bool is_bf16 = sizeof(T) == 2;
  for (int trial = 0; trial < 8; ++trial) {
    const int Hkv = 1 + static_cast<int>(rng.below(4)),
              H = Hkv * (1 + static_cast<int>(rng.below(3)));
    // Decode trials (even) cover every split-KV kernel: d = 128 and 96 run v2 and v3 (16-byte
    // loads, the last block merges), d = 64 without counters v2 with the merge kernel, d = 38 (not
    // whole 16-byte vectors) v1.
    const int d = trial == 0   ? 128
                  : trial == 2 ? 38
                  : trial == 4 ? 64
                  : trial == 6 ? 96
                               : 2 * (8 + static_cast<int>(rng.below(56)));
    const int capacity = 600, kvd = Hkv * d;
    const int past = static_cast<int>(rng.below(400));
    const int n = trial % 2 == 0 ? 1 : 1 + static_cast<int>(rng.below(130));  // decode / prefill
    // The cache already holds `past` rows; the call appends n more.
    auto k_all = random_vector(rng, static_cast<std::size_t>(past + n) * kvd);
    auto v_all = random_vector(rng, static_cast<std::size_t>(past + n) * kvd);
    if (is_bf16)
      for (auto* a : {&k_all, &v_all})
        for (float& x : *a) x = lab::test::round_bf16(x);  // what the bf16 cache stores
    const auto q = random_vector(rng, static_cast<std::size_t>(n) * H * d);
    std::vector<T> cache_k(static_cast<std::size_t>(capacity) * kvd),
        cache_v(static_cast<std::size_t>(capacity) * kvd);
    for (std::size_t i = 0; i < static_cast<std::size_t>(past) * kvd; ++i) {
      cache_k[i] = static_cast<T>(k_all[i]);
      cache_v[i] = static_cast<T>(v_all[i]);
    }
    DeviceBuffer<T> d_kc{std::span<const T>(cache_k)}, d_vc{std::span<const T>(cache_v)};
    const std::vector<float> k_new(k_all.begin() + static_cast<long>(past) * kvd, k_all.end());
    const std::vector<float> v_new(v_all.begin() + static_cast<long>(past) * kvd, v_all.end());
    DeviceBuffer<float> d_kn{std::span<const float>(k_new)}, d_vn{std::span<const float>(v_new)};
    DeviceBuffer<float> d_q{std::span<const float>(q)}, d_o(q.size());
    // Decode (n == 1) takes the split-KV path when given its scratch.
    // Partials poisoned (a chunk the merge reads but nobody wrote fails), counters zeroed.
    DeviceBuffer<float> d_split(
        static_cast<std::size_t>(attention_split_scratch_floats(H, d, capacity)));
    d_split.fill_bytes(0xFF);
    DeviceBuffer<int> d_counters(static_cast<std::size_t>(H));
    d_counters.fill_bytes(0);
    int* counters = trial == 4 ? nullptr : d_counters.get();
    // Version 4 prefetches a range into L2 while it works: here the value cache, a length that is
    // no multiple of a 128-byte line. The prefetch is a hint; the results must be v3's.
    const std::size_t prefetch_bytes = d_vc.size() * sizeof(T) - 6;
    for (const int version : {2, 3, 4}) {  // split-KV v2, v3, v4 (prefill and v1 ignore it)
      SCOPED_TRACE("split-KV version " + std::to_string(version) + ", d = " + std::to_string(d) +
                   ", n = " + std::to_string(n));
      d_split.fill_bytes(0xFF);
      const std::vector<int> pos{past};
      DeviceBuffer<int> d_pos{std::span<const int>(pos)};
      d_o.fill_bytes(0xFF);
      kv_append<T>(d_kn.get(), d_vn.get(), d_kc.get(), d_vc.get(), n, kvd, d_pos.get(), nullptr);
      attention_cached<T>(d_q.get(), d_kc.get(), d_vc.get(), d_o.get(), n, H, Hkv, d, d_pos.get(),
                          capacity, nullptr, d_split.get(), false, counters, version, d_vc.get(),
                          prefetch_bytes);
      advance_position(d_pos.get(), n, nullptr);
      // The append wrote exactly rows past..past+n-1.
      const auto kc = d_kc.download();
      for (std::size_t i = 0; i < k_all.size(); ++i)
        ASSERT_EQ(static_cast<float>(kc[i]), k_all[i]) << "cache row " << i / kvd;
      expect_close(reference_attention(q, k_all, v_all, n, past, H, Hkv, d), d_o.download(),
                   tolerance_for(DType::FP32, std::max(past + n, d)),
                   std::string("attention_cached ") + (is_bf16 ? "bf16" : "fp32"));
      EXPECT_EQ(d_pos.download()[0], past + n);
      if (n == 1) {  // the same step again, with PDL: split-KV must have reset its counters
        if (counters != nullptr)
          EXPECT_EQ(d_counters.download(), std::vector<int>(static_cast<std::size_t>(H), 0));
        Stream stream;
        d_o.fill_bytes(0xFF);
        const std::vector<int> again{past};
        d_pos.upload(std::span<const int>(again));
        attention_cached<T>(d_q.get(), d_kc.get(), d_vc.get(), d_o.get(), n, H, Hkv, d, d_pos.get(),
                            capacity, stream.get(), d_split.get(), /*pdl=*/true, counters, version,
                            d_vc.get(), prefetch_bytes);
        stream.synchronize();
        expect_close(reference_attention(q, k_all, v_all, n, past, H, Hkv, d), d_o.download(),
                     tolerance_for(DType::FP32, std::max(past + n, d)),
                     std::string("attention_cached, second step ") + (is_bf16 ? "bf16" : "fp32"));
      }
    }  // version
  }
}

TEST(Kernels, KvAppendAndCachedAttentionFp32) {
  LAB_REQUIRE_GPU();
  check_cached_attention<float>(32);
}

TEST(Kernels, KvAppendAndCachedAttentionBf16) {
  LAB_REQUIRE_GPU();
  check_cached_attention<bf16>(33);
}
