// Bad input on the GPU: a model or a KV cache the device cannot hold is refused before anything is
// allocated, with a lab::Error that says how much is needed and how much is free; a cache that is
// full refuses the next token instead of writing past its end. Skips without a GPU.
#include <gtest/gtest.h>

#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/model_config.hpp"
#include "common/weights.hpp"
#include "cuda/decoder.hpp"
#include "cuda/device.hpp"
#include "gpu_test.hpp"

namespace {

using lab::cuda::Decoder;
using lab::cuda::DecoderOptions;

// Runs `make` and returns the lab::Error's message; a test failure when nothing is thrown.
template <typename Make>
std::string error_of(Make make) {
  try {
    make();
  } catch (const lab::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no lab::Error";
  return {};
}

// The message of lab::cuda::require_device_memory: "<what> needs X GiB of GPU memory, only Y GiB
// of Z GiB are free", with X the figure the caller asked for.
void expect_memory_message(const std::string& message, const std::string& what, double needed_gib) {
  EXPECT_NE(message.find(what), std::string::npos) << message;
  EXPECT_NE(message.find(" GiB of GPU memory, only "), std::string::npos) << message;
  EXPECT_NE(message.find(" GiB are free"), std::string::npos) << message;
  char needs[64];
  std::snprintf(needs, sizeof needs, "needs %.2f GiB", needed_gib);
  EXPECT_NE(message.find(needs), std::string::npos) << message << " (expected '" << needs << "')";
}

TEST(BadInputGpu, RequireDeviceMemorySaysWhatIsNeededAndWhatIsFree) {
  LAB_REQUIRE_GPU();
  const auto info = lab::cuda::require_device();
  const std::size_t bytes = info.total_memory + (std::size_t{1} << 30);  // more than the card
  const std::string message =
      error_of([&] { lab::cuda::require_device_memory(bytes, "the test's buffer"); });
  expect_memory_message(message, "the test's buffer",
                        static_cast<double>(bytes) / static_cast<double>(1 << 30));
  // What fits is not refused.
  EXPECT_NO_THROW(lab::cuda::require_device_memory(std::size_t{1} << 20, "1 MiB"));
}

// Llama-3-8B's shape with a KV cache of 4 M tokens: the cache alone would be 2 × 32 layers × 4 M ×
// 1024 × 2 B = 512 GiB in bf16. Refused before the weights are drawn, naming the model and the
// capacity asked for.
TEST(BadInputGpu, KvCacheLargerThanTheDeviceIsRefused) {
  LAB_REQUIRE_GPU();
  const lab::ModelConfig c = lab::preset("llama3-8b");
  DecoderOptions options;
  options.capacity = 1 << 22;
  options.max_prefill = 16;
  const std::string message = error_of([&] { Decoder gpu(c, 1, options); });
  EXPECT_NE(message.find("the model llama3-8b (bf16, KV cache of 4194304 tokens)"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find(" GiB of GPU memory, only "), std::string::npos) << message;
  // At least the cache and the weights; the exact figure also counts activations and a margin.
  const double kv_gib = 2.0 * c.num_layers * options.capacity * c.kv_dim() * 2 / (1 << 30);
  double needs = 0;
  ASSERT_NE(message.find("needs "), std::string::npos) << message;
  ASSERT_EQ(std::sscanf(message.c_str() + message.find("needs "), "needs %lf GiB", &needs), 1)
      << message;
  EXPECT_GE(needs, kv_gib);
  EXPECT_GE(kv_gib, 512.0);
}

// A shape whose weights alone cannot fit any card: 200 layers of Llama-2-70B-like blocks, fp32.
TEST(BadInputGpu, ModelLargerThanTheDeviceIsRefused) {
  LAB_REQUIRE_GPU();
  lab::ModelConfig c = lab::preset("llama2-7b");
  c.name = "too-big";
  c.num_layers = 200;
  c.hidden_size = 8192;
  c.num_heads = 64;
  c.num_kv_heads = 8;
  c.intermediate_size = 28672;
  lab::validate(c);
  DecoderOptions options;
  options.precision = lab::cuda::DecoderPrecision::FP32;
  options.capacity = 16;
  const std::string message = error_of([&] { Decoder gpu(c, 1, options); });
  EXPECT_NE(message.find("the model too-big (fp32, KV cache of 16 tokens)"), std::string::npos)
      << message;
  double needs = 0;
  ASSERT_NE(message.find("needs "), std::string::npos) << message;
  ASSERT_EQ(std::sscanf(message.c_str() + message.find("needs "), "needs %lf GiB", &needs), 1)
      << message;
  EXPECT_GE(needs, static_cast<double>(c.parameter_count()) * 4 / (1 << 30)) << message;
}

// A cache that is full refuses more tokens, whichever way they come, and stays usable.
TEST(BadInputGpu, FullCacheRefusesTheNextToken) {
  LAB_REQUIRE_GPU();
  const lab::ModelWeights w = lab::random_weights(lab::preset("tiny"), 3);
  DecoderOptions options;
  options.capacity = 8;
  Decoder gpu(w, options);
  const std::vector<int> tokens = {256, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  // More tokens in one call than the cache holds: refused, nothing written.
  EXPECT_NE(error_of([&] { gpu.forward(tokens); }).find("exceed max_prefill 8"), std::string::npos);
  EXPECT_EQ(gpu.length(), 0);
  // A prefill of 6, then 3 more: the 9th position does not exist.
  (void)gpu.forward(std::span<const int>(tokens.data(), 6));
  EXPECT_NE(error_of([&] {
              gpu.forward(std::span<const int>(tokens.data() + 6, 3));
            }).find("context of 9 tokens exceeds the KV cache capacity 8"),
            std::string::npos);
  EXPECT_EQ(gpu.length(), 6);
  (void)gpu.forward(std::span<const int>(tokens.data() + 6, 2));  // exactly full
  EXPECT_NE(error_of([&] {
              gpu.forward(std::span<const int>(tokens.data(), 1));
            }).find("context of 9 tokens exceeds the KV cache capacity 8"),
            std::string::npos);
  gpu.reset();
  // A greedy generation that would outgrow the cache is refused before its prefill.
  EXPECT_NE(error_of([&] {
              gpu.generate_greedy(std::span<const int>(tokens.data(), 4), 6, true);
            }).find("exceed the KV cache capacity 8"),
            std::string::npos);
  EXPECT_EQ(gpu.generate_greedy(std::span<const int>(tokens.data(), 4), 5, true).size(), 5u);
}

// Token ids outside the vocabulary are refused before they reach the embedding kernel.
TEST(BadInputGpu, TokenOutsideTheVocabularyIsRefused) {
  LAB_REQUIRE_GPU();
  const lab::ModelWeights w = lab::random_weights(lab::preset("tiny"), 3);
  DecoderOptions options;
  options.capacity = 8;
  Decoder gpu(w, options);
  for (int id : {-1, 258, std::numeric_limits<int>::max()}) {
    const std::vector<int> tokens = {256, id};
    EXPECT_NE(error_of([&] { gpu.forward(tokens); }).find("is outside the vocabulary"),
              std::string::npos)
        << id;
  }
  EXPECT_EQ(gpu.length(), 0);
  // Chunked: the bad id is in the third chunk; no chunk may have run before it was seen.
  DecoderOptions chunked = options;
  chunked.prefill_chunk = 2;
  Decoder gpu2(w, chunked);
  const std::vector<int> tokens = {256, 1, 2, 3, 300};
  EXPECT_NE(error_of([&] { gpu2.forward(tokens); }).find("is outside the vocabulary"),
            std::string::npos);
  EXPECT_EQ(gpu2.length(), 0);
  EXPECT_EQ(gpu2.forward(std::span<const int>(tokens.data(), 4)).size(), 258u) << "still usable";
}

TEST(BadInputGpu, NegativePrefillChunkIsRefused) {
  LAB_REQUIRE_GPU();
  const lab::ModelWeights w = lab::random_weights(lab::preset("tiny"), 3);
  DecoderOptions options;
  options.prefill_chunk = -1;
  EXPECT_NE(error_of([&] { Decoder gpu(w, options); }).find("the prefill chunk must be >= 0"),
            std::string::npos);
}

}  // namespace
