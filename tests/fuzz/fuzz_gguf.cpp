// Fuzz target: the GGUF reader, then everything the loader does with a file that parsed
// (config from llama.* keys, dequantization, the tokenizer from tokenizer.ggml.*).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/bpe_tokenizer.hpp"
#include "common/error.hpp"
#include "common/gguf.hpp"
#include "common/gguf_llama.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto file = lab::GgufFile::from_bytes(std::vector<std::uint8_t>(data, data + size));
    for (const auto& info : file.tensors()) {
      if (info.numel > (1u << 20)) continue;  // the reader validated the size; skip huge work
      (void)file.dequantize(info);
    }
    try {
      const auto config = lab::config_from_gguf(file);
      (void)lab::weights_from_gguf(file, config);
    } catch (const lab::Error&) {
    }
    (void)lab::BpeTokenizer::from_gguf(file);
  } catch (const lab::Error&) {
  }
  return 0;
}
