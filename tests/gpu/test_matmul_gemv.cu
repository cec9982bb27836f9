// Linear layers: the naive matmul, every GEMV version in fp32 and bf16, and the cuBLAS wrappers,
// against a double-precision CPU product on shapes that are not multiples of any tile or vector.
#include <cmath>
#include <cstdlib>

#include "cuda/gemm.hpp"
#include "cuda/resources.hpp"
#include "kernel_test_util.hpp"

using namespace lab;
using namespace lab::cuda;
using lab::test::expect_close;
using lab::test::random_vector;

namespace {

// y = x Wᵀ (+ y0) in double. x (n, in), W (out, in).
std::vector<float> reference_linear(const std::vector<float>& x, const std::vector<float>& w,
                                    const std::vector<float>* y0, int n, int in, int out) {
  std::vector<float> y(static_cast<std::size_t>(n) * out);
  for (int i = 0; i < n; ++i)
    for (int o = 0; o < out; ++o) {
      double acc = y0 ? (*y0)[i * out + o] : 0.0;
      for (int c = 0; c < in; ++c)
        acc += double(x[i * in + c]) * w[static_cast<std::size_t>(o) * in + c];
      y[i * out + o] = static_cast<float>(acc);
    }
  return y;
}

std::vector<float> rounded(std::vector<float> v) {
  for (float& x : v) x = lab::test::round_bf16(x);
  return v;
}

}  // namespace

TEST(Kernels, MatmulNaive) {
  LAB_REQUIRE_GPU();
  Rng rng(21);
  for (int trial = 0; trial < 5; ++trial) {
    const int n = 1 + static_cast<int>(rng.below(37)), in = 1 + static_cast<int>(rng.below(600));
    const int out = 1 + static_cast<int>(rng.below(500));
    const bool accumulate = trial % 2 == 1;
    const auto x = random_vector(rng, static_cast<std::size_t>(n) * in);
    const auto w = random_vector(rng, static_cast<std::size_t>(out) * in);
    const auto y0 = random_vector(rng, static_cast<std::size_t>(n) * out);
    DeviceBuffer<float> d_x{std::span<const float>(x)}, d_w{std::span<const float>(w)};
    DeviceBuffer<float> d_y{std::span<const float>(y0)};
    if (!accumulate) d_y.fill_bytes(0xFF);
    matmul_naive(d_x.get(), d_w.get(), d_y.get(), n, in, out, accumulate, nullptr);
    expect_close(reference_linear(x, w, accumulate ? &y0 : nullptr, n, in, out), d_y.download(),
                 tolerance_for(DType::FP32, in), "matmul_naive", static_cast<std::size_t>(out));
  }
}

TEST(Kernels, GemvEveryVersionFp32AndBf16) {
  LAB_REQUIRE_GPU();
  Rng rng(22);
  // {9, 14344}: v4 stages x in shared memory, 57 KB in fp32, past the 48 KB default. {50000, 64}:
  // 3125 slabs of 16 rows for v7 (the most rows a slab holds).
  const std::pair<int, int> shapes[] = {{1, 1},           {7, 9},     {33, 64},   {300, 1000},
                                        {1025, 4096},     {5, 24},    {9, 14344}, {64, 11008 + 8},
                                        {4096 + 3, 1032}, {7001, 64}, {50000, 64}};
  for (auto [rows, cols] : shapes)
    for (GemvVersion version :
         {GemvVersion::V1Naive, GemvVersion::V2Warp, GemvVersion::V3Vector16,
          GemvVersion::V4InFlight, GemvVersion::V5Pdl, GemvVersion::V6Deep, GemvVersion::V7Slab})
      for (bool accumulate : {false, true}) {
        const auto w = random_vector(rng, static_cast<std::size_t>(rows) * cols);
        const auto x = random_vector(rng, static_cast<std::size_t>(cols));
        const auto y0 = random_vector(rng, static_cast<std::size_t>(rows));
        DeviceBuffer<float> d_x{std::span<const float>(x)};
        // fp32 weights
        DeviceBuffer<float> d_w{std::span<const float>(w)}, d_y{std::span<const float>(y0)};
        if (!accumulate) d_y.fill_bytes(0xFF);
        gemv<float>(version, d_w.get(), d_x.get(), d_y.get(), rows, cols, accumulate, nullptr);
        const std::string what = std::string(to_string(version)) + " " + std::to_string(rows) +
                                 "x" + std::to_string(cols);
        expect_close(reference_linear(x, w, accumulate ? &y0 : nullptr, 1, cols, rows),
                     d_y.download(), tolerance_for(DType::FP32, cols), what + " fp32");
        // bf16 weights: the reference uses the same rounded weights, so only fp32 accumulation
        // error remains.
        const auto w16 = lab::test::to_bf16_host(w);
        DeviceBuffer<bf16> d_w16{std::span<const bf16>(w16)};
        DeviceBuffer<float> d_y16{std::span<const float>(y0)};
        if (!accumulate) d_y16.fill_bytes(0xFF);
        gemv<bf16>(version, d_w16.get(), d_x.get(), d_y16.get(), rows, cols, accumulate, nullptr);
        expect_close(reference_linear(x, rounded(w), accumulate ? &y0 : nullptr, 1, cols, rows),
                     d_y16.download(), tolerance_for(DType::FP32, cols), what + " bf16");
      }
}

TEST(Kernels, CublasLinearFp32Tf32Bf16) {
  LAB_REQUIRE_GPU();
  Rng rng(23);
  Stream stream;
  CublasHandle handle(stream.get());
  for (int trial = 0; trial < 4; ++trial) {
    const int n = 1 + static_cast<int>(rng.below(70)),
              in = 8 * (1 + static_cast<int>(rng.below(90)));
    const int out = 1 + static_cast<int>(rng.below(333));
    const auto x = random_vector(rng, static_cast<std::size_t>(n) * in);
    const auto w = random_vector(rng, static_cast<std::size_t>(out) * in);
    const auto y0 = random_vector(rng, static_cast<std::size_t>(n) * out);
    DeviceBuffer<float> d_x{std::span<const float>(x)}, d_w{std::span<const float>(w)};
    for (bool tf32 : {false, true}) {
      DeviceBuffer<float> d_y{std::span<const float>(y0)};
      linear_fp32(handle.get(), d_w.get(), d_x.get(), d_y.get(), n, in, out, true, tf32);
      stream.synchronize();
      // TF32 keeps 10 mantissa bits, like fp16: its inputs are rounded with u = 2^-11.
      expect_close(reference_linear(x, w, &y0, n, in, out), d_y.download(),
                   tolerance_for(tf32 ? DType::FP16 : DType::FP32, in), tf32 ? "tf32" : "fp32");
    }
    const auto x16 = lab::test::to_bf16_host(x), w16 = lab::test::to_bf16_host(w);
    DeviceBuffer<bf16> d_x16{std::span<const bf16>(x16)}, d_w16{std::span<const bf16>(w16)};
    DeviceBuffer<float> d_y(static_cast<std::size_t>(n) * out);
    d_y.fill_bytes(0xFF);
    linear_bf16(handle.get(), d_w16.get(), d_x16.get(), d_y.get(), n, in, out, false);
    stream.synchronize();
    // Inputs rounded the same way on both sides: fp32 accumulation error only.
    expect_close(reference_linear(rounded(x), rounded(w), nullptr, n, in, out), d_y.download(),
                 tolerance_for(DType::FP32, in), "bf16 (rounded inputs)");
  }
}

// The evidence behind cuda::mark_initialized. compute-sanitizer's initcheck reported every kernel
// that reads a bf16 GEMM's output (the decoder's prefill: rope_kernel reading q and k) as reading
// uninitialised memory. Here, on the decoder's own prefill shapes: a fresh (never written) output
// buffer and one filled with NaN bytes both come back complete and right after the GEMM, and a
// kernel reading the fresh buffer (residual_add) sees the GEMM's values. So cuBLAS writes every
// element, and the reports came from writes the tool does not see. scripts/gpu_sanitize.sh runs
// this test under initcheck twice: with the marks (clean) and without (LAB_NVTX_MARKS=0, the
// reports appear: the control).
TEST(Kernels, GemmWritesEveryOutput) {
  LAB_REQUIRE_GPU();
  Rng rng(24);
  Stream stream;
  CublasHandle handle(stream.get());
  // (n, in, out): SmolLM2 prefill of 241 tokens (qkv, gate_up, down), a tiny-preset-like layer and
  // a 4096-wide one.
  const int shapes[][3] = {
      {241, 576, 960}, {241, 576, 3072}, {241, 1536, 576}, {11, 64, 192}, {40, 4096, 1024}};
  for (const auto& shape : shapes) {
    const int n = shape[0], in = shape[1], out = shape[2];
    const std::size_t count = static_cast<std::size_t>(n) * out;
    const auto x = rounded(random_vector(rng, static_cast<std::size_t>(n) * in));
    const auto w = rounded(random_vector(rng, static_cast<std::size_t>(out) * in));
    const auto expected = reference_linear(x, w, nullptr, n, in, out);
    const auto x16 = lab::test::to_bf16_host(x), w16 = lab::test::to_bf16_host(w);
    DeviceBuffer<bf16> d_x{std::span<const bf16>(x16)}, d_w{std::span<const bf16>(w16)};
    DeviceBuffer<float> fresh(count), poisoned(count), copy(count);
    poisoned.fill_bytes(0xFF);  // NaN in every float: a skipped element cannot pass
    copy.fill_bytes(0);
    linear_bf16(handle.get(), d_w.get(), d_x.get(), fresh.get(), n, in, out, false);
    linear_bf16(handle.get(), d_w.get(), d_x.get(), poisoned.get(), n, in, out, false);
    residual_add(copy.get(), fresh.get(), static_cast<std::int64_t>(count), stream.get());
    stream.synchronize();
    const std::string what =
        std::to_string(n) + "x" + std::to_string(in) + "->" + std::to_string(out);
    const auto tol = tolerance_for(DType::FP32, in);
    expect_close(expected, poisoned.download(), tol, "bf16 GEMM over NaN " + what);
    expect_close(expected, fresh.download(), tol, "bf16 GEMM into fresh memory " + what);
    expect_close(expected, copy.download(), tol, "a kernel reading the GEMM's output " + what);
  }
}

namespace {

// A kernel with a shared-memory race, on purpose: each thread writes its slot and reads the next
// warp's with no __syncthreads() between, so what it reads depends on warp scheduling (a
// read-after-write hazard between warps). Used only by the control below.
__global__ void racy_neighbour_kernel(float* out) {
  __shared__ float slot[256];
  const int t = static_cast<int>(threadIdx.x);
  slot[t] = static_cast<float>(t);
  out[t] = slot[(t + 32) % 256];  // the next warp's slot: no barrier orders it
}

}  // namespace

// The control for racecheck, as GemmWritesEveryOutput is initcheck's: run the way
// scripts/gpu_sanitize.sh runs racecheck (every hazard printed, the count read from the summary,
// library kernels' hazards set apart), one racy kernel of ours must be reported and counted as
// ours, or a clean table means nothing. It runs only when the script asks
// (LAB_RACECHECK_CONTROL=1); the race makes its output meaningless, so nothing is asserted.
TEST(Sanitizer, RacecheckReportsARaceOfOurs) {
  LAB_REQUIRE_GPU();
  if (std::getenv("LAB_RACECHECK_CONTROL") == nullptr)
    GTEST_SKIP() << "a control for scripts/gpu_sanitize.sh (LAB_RACECHECK_CONTROL=1)";
  Stream stream;
  DeviceBuffer<float> racy(256);
  racy_neighbour_kernel<<<1, 256, 0, stream.get()>>>(racy.get());
  LAB_CUDA_CHECK(cudaGetLastError());
  stream.synchronize();
}
