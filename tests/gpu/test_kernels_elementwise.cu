// Each element-wise and reduction kernel against a plain CPU loop (double where it matters), on
// random shapes that are not multiples of the block size. Outputs are poisoned with NaN first, so
// an element the kernel forgets to write fails the comparison.
#include <cmath>

#include "kernel_test_util.hpp"

using namespace lab;
using namespace lab::cuda;
using lab::test::expect_close;
using lab::test::random_vector;

TEST(Kernels, EmbeddingGather) {
  LAB_REQUIRE_GPU();
  Rng rng(11);
  for (int trial = 0; trial < 5; ++trial) {
    const int V = 1 + static_cast<int>(rng.below(300)), D = 1 + static_cast<int>(rng.below(700));
    const int n = 1 + static_cast<int>(rng.below(40));
    const auto table = random_vector(rng, static_cast<std::size_t>(V) * D);
    std::vector<int> tokens(static_cast<std::size_t>(n));
    for (int& t : tokens) t = static_cast<int>(rng.below(static_cast<std::uint64_t>(V)));
    DeviceBuffer<float> d_table{std::span<const float>(table)};
    DeviceBuffer<int> d_tokens{std::span<const int>(tokens)};
    DeviceBuffer<float> d_x(static_cast<std::size_t>(n) * D);
    d_x.fill_bytes(0xFF);
    embedding_gather(d_table.get(), d_tokens.get(), d_x.get(), n, D, nullptr);
    std::vector<float> ref;
    for (int t : tokens)
      ref.insert(ref.end(), table.begin() + static_cast<long>(t) * D,
                 table.begin() + static_cast<long>(t + 1) * D);
    EXPECT_EQ(d_x.download(), ref) << "a gather copies exactly";
  }
}

TEST(Kernels, RmsNorm) {
  LAB_REQUIRE_GPU();
  Rng rng(12);
  for (int trial = 0; trial < 6; ++trial) {
    const int n = 1 + static_cast<int>(rng.below(33)), D = 1 + static_cast<int>(rng.below(3000));
    const auto x = random_vector(rng, static_cast<std::size_t>(n) * D, 3.0);
    const auto gain = random_vector(rng, static_cast<std::size_t>(D));
    DeviceBuffer<float> d_x{std::span<const float>(x)}, d_g{std::span<const float>(gain)};
    DeviceBuffer<float> d_y(x.size());
    d_y.fill_bytes(0xFF);
    rms_norm(d_x.get(), d_g.get(), d_y.get(), n, D, 1e-5f, nullptr);
    std::vector<float> ref(x.size());
    for (int r = 0; r < n; ++r) {
      double ss = 0;
      for (int i = 0; i < D; ++i) ss += double(x[r * D + i]) * x[r * D + i];
      const double inv = 1.0 / std::sqrt(ss / D + 1e-5);
      for (int i = 0; i < D; ++i) ref[r * D + i] = static_cast<float>(x[r * D + i] * inv * gain[i]);
    }
    expect_close(ref, d_y.download(), tolerance_for(DType::FP32, D), "rms_norm");
  }
}

TEST(Kernels, RopeAtHostAndDevicePositions) {
  LAB_REQUIRE_GPU();
  Rng rng(13);
  for (int trial = 0; trial < 6; ++trial) {
    const int heads = 1 + static_cast<int>(rng.below(9));
    const int d = 2 * (1 + static_cast<int>(rng.below(64)));
    const int n = 1 + static_cast<int>(rng.below(20));
    const int first = static_cast<int>(rng.below(5000)),
              dev_pos = static_cast<int>(rng.below(3000));
    const auto x = random_vector(rng, static_cast<std::size_t>(n) * heads * d);
    std::vector<double> freq(static_cast<std::size_t>(d / 2));
    for (int i = 0; i < d / 2; ++i) freq[i] = std::pow(10000.0, -2.0 * i / d);
    DeviceBuffer<float> d_x{std::span<const float>(x)};
    DeviceBuffer<double> d_freq{std::span<const double>(freq)};
    const std::vector<int> pos{dev_pos};
    DeviceBuffer<int> d_pos{std::span<const int>(pos)};
    apply_rope(d_x.get(), n, heads, d, d_freq.get(), first, d_pos.get(), nullptr);
    std::vector<float> ref = x;
    for (int r = 0; r < n; ++r)
      for (int h = 0; h < heads; ++h)
        for (int i = 0; i < d / 2; ++i) {
          const double angle = double(first + dev_pos + r) * freq[i];
          const double a = x[(r * heads + h) * d + i], b = x[(r * heads + h) * d + i + d / 2];
          ref[(r * heads + h) * d + i] =
              static_cast<float>(a * std::cos(angle) - b * std::sin(angle));
          ref[(r * heads + h) * d + i + d / 2] =
              static_cast<float>(b * std::cos(angle) + a * std::sin(angle));
        }
    expect_close(ref, d_x.download(), tolerance_for(DType::FP32, 2), "rope");
  }
}

TEST(Kernels, SoftmaxCausalAndFull) {
  LAB_REQUIRE_GPU();
  Rng rng(14);
  for (bool causal : {false, true}) {
    const int period = 1 + static_cast<int>(rng.below(300)), groups = 3;
    const int rows = period * groups, cols = causal ? period : 1 + static_cast<int>(rng.below(999));
    const auto s = random_vector(rng, static_cast<std::size_t>(rows) * cols, 4.0);
    DeviceBuffer<float> d_s{std::span<const float>(s)};
    softmax_rows(d_s.get(), rows, cols, causal, period, nullptr);
    std::vector<float> ref(s.size(), 0.0f);
    for (int r = 0; r < rows; ++r) {
      const int valid = causal ? r % period + 1 : cols;
      double m = -INFINITY, sum = 0;
      for (int j = 0; j < valid; ++j) m = std::max(m, double(s[r * cols + j]));
      for (int j = 0; j < valid; ++j) sum += std::exp(s[r * cols + j] - m);
      for (int j = 0; j < valid; ++j)
        ref[r * cols + j] = static_cast<float>(std::exp(s[r * cols + j] - m) / sum);
    }
    expect_close(ref, d_s.download(), tolerance_for(DType::FP32, cols), "softmax", cols);
  }
}

TEST(Kernels, SwigluWithStride) {
  LAB_REQUIRE_GPU();
  Rng rng(15);
  const int n = 7, F = 1001;
  const auto gu = random_vector(rng, static_cast<std::size_t>(n) * 2 * F, 2.0);
  DeviceBuffer<float> d_gu{std::span<const float>(gu)}, d_out(static_cast<std::size_t>(n) * F);
  d_out.fill_bytes(0xFF);
  swiglu(d_gu.get(), d_gu.get() + F, d_out.get(), n, F, 2 * F, nullptr);
  std::vector<float> ref(static_cast<std::size_t>(n) * F);
  for (int r = 0; r < n; ++r)
    for (int i = 0; i < F; ++i) {
      const double g = gu[r * 2 * F + i], u = gu[r * 2 * F + F + i];
      ref[r * F + i] = static_cast<float>(g / (1 + std::exp(-g)) * u);
    }
  expect_close(ref, d_out.download(), tolerance_for(DType::FP32, 4), "swiglu");
}

TEST(Kernels, ResidualAdd) {
  LAB_REQUIRE_GPU();
  Rng rng(16);
  const std::size_t count = 100003;
  const auto x = random_vector(rng, count), y = random_vector(rng, count);
  DeviceBuffer<float> d_x{std::span<const float>(x)}, d_y{std::span<const float>(y)};
  residual_add(d_x.get(), d_y.get(), static_cast<std::int64_t>(count), nullptr);
  std::vector<float> ref(count);
  for (std::size_t i = 0; i < count; ++i) ref[i] = x[i] + y[i];
  EXPECT_EQ(d_x.download(), ref) << "one fp32 add rounds the same on both";
}

TEST(Kernels, ArgmaxLowestIndexOnTies) {
  LAB_REQUIRE_GPU();
  Rng rng(17);
  for (int V : {1, 5, 258, 32000, 49152, 100001}) {
    auto logits = random_vector(rng, static_cast<std::size_t>(V));
    const int a = static_cast<int>(rng.below(static_cast<std::uint64_t>(V)));
    logits[a] = 50.0f;
    const int b = static_cast<int>(rng.below(static_cast<std::uint64_t>(V)));
    logits[b] = 50.0f;  // a tie: the lower id must win, as on the CPU
    DeviceBuffer<float> d_l{std::span<const float>(logits)};
    DeviceBuffer<int> d_token(1), d_history(4), d_step(1);
    d_step.fill_bytes(0);
    argmax(d_l.get(), V, d_token.get(), d_history.get(), d_step.get(), nullptr);
    argmax(d_l.get(), V, d_token.get(), d_history.get(), d_step.get(), nullptr);
    EXPECT_EQ(d_token.download()[0], std::min(a, b)) << "V=" << V;
    EXPECT_EQ(d_step.download()[0], 2);
    EXPECT_EQ(d_history.download(2), (std::vector<int>{std::min(a, b), std::min(a, b)}));
  }
}

TEST(Kernels, Bf16ConversionAndRandomFill) {
  LAB_REQUIRE_GPU();
  Rng rng(18);
  const std::size_t count = 77777;
  const auto x = random_vector(rng, count, 10.0);
  DeviceBuffer<float> d_x{std::span<const float>(x)};
  DeviceBuffer<bf16> d_b(count);
  to_bf16(d_x.get(), d_b.get(), static_cast<std::int64_t>(count), nullptr);
  const auto got = d_b.download();
  for (std::size_t i = 0; i < count; ++i)
    ASSERT_EQ(__bfloat162float(got[i]), lab::test::round_bf16(x[i])) << i;
  // Random fill: deterministic in the seed, mean and spread as asked.
  DeviceBuffer<float> d_r(1 << 20);
  fill_random<float>(d_r.get(), 1 << 20, 42, 2.0f, 1.0f, nullptr);
  const auto r = d_r.download();
  double mean = 0, var = 0;
  for (float v : r) mean += v;
  mean /= static_cast<double>(r.size());
  for (float v : r) var += (v - mean) * (v - mean);
  var /= static_cast<double>(r.size());
  EXPECT_NEAR(mean, 1.0, 0.01);
  EXPECT_NEAR(std::sqrt(var), 2.0, 0.01);
}

TEST(Kernels, StreamReadTouchesEverything) {
  LAB_REQUIRE_GPU();
  int sms = 0;
  LAB_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  DeviceBuffer<std::uint32_t> d_data(1 << 20);
  d_data.fill_bytes(0);
  DeviceBuffer<float> d_sink(static_cast<std::size_t>(sms) * 8);
  stream_read(d_data.get(), static_cast<std::int64_t>(d_data.bytes()), d_sink.get(), nullptr);
  LAB_CUDA_CHECK(cudaDeviceSynchronize());
  for (float v : d_sink.download()) EXPECT_EQ(v, 0.0f);
}
