// Fuzz target: the byte-level BPE tokenizer. The first byte picks the operation: encode the rest
// as text (arbitrary bytes, invalid UTF-8 included: it must round-trip), or decode it as a list
// of 16-bit ids (ids outside the vocabulary must give lab::Error). The vocabulary is SmolLM2's
// when the model is in the cache, else a synthetic one with merges and specials.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/bpe_tokenizer.hpp"
#include "common/error.hpp"
#include "common/gguf.hpp"
#include "common/model_source.hpp"

namespace {

std::string byte_symbol(unsigned char b) {
  static const auto symbols = lab::bytes_to_unicode();
  const char32_t c = symbols[b];
  std::string s;
  if (c < 0x80) {
    s += static_cast<char>(c);
  } else {
    s += static_cast<char>(0xC0 | (c >> 6));
    s += static_cast<char>(0x80 | (c & 0x3F));
  }
  return s;
}

std::shared_ptr<const lab::BpeTokenizer> make_tokenizer() {
  const std::string path = lab::smollm2_gguf_path();
  if (std::filesystem::exists(path)) return lab::BpeTokenizer::from_gguf(lab::GgufFile(path));
  lab::BpeVocabulary v = lab::byte_tokenizer_vocabulary();
  // A few merges and a multi-byte special so that the merge loop and the special split run.
  auto sym = byte_symbol;
  v.merges = {{sym('t'), sym('h')}, {sym('t') + sym('h'), sym('e')}, {sym(' '), sym('a')}};
  v.tokens.push_back(sym('t') + sym('h'));
  v.tokens.push_back(sym('t') + sym('h') + sym('e'));
  v.tokens.push_back(sym(' ') + sym('a'));
  v.tokens.push_back("<|im_start|>");
  v.special_ids.push_back(static_cast<int>(v.tokens.size()) - 1);
  v.pre_tokenizer = lab::PreTokenizer::kSmolLm;
  return std::make_shared<lab::BpeTokenizer>(v);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto tokenizer = make_tokenizer();
  if (size == 0) return 0;
  const std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] % 2 == 0) {
    const auto ids = tokenizer->encode(rest);
    for (int id : ids)
      if (id < 0 || id >= tokenizer->vocab_size()) std::abort();
    // Byte-level BPE is lossless for every byte the vocabulary has a token for (SmolLM2 lacks a
    // few, e.g. 0xFF, which UTF-8 never contains; those are dropped, as HF does).
    bool every_byte_has_a_token = true;
    for (unsigned char b : rest) every_byte_has_a_token &= tokenizer->token_id(byte_symbol(b)) >= 0;
    if (every_byte_has_a_token && tokenizer->decode(ids) != rest) std::abort();
  } else {
    std::vector<int> ids;
    for (std::size_t i = 0; i + 1 < rest.size(); i += 2)
      ids.push_back(static_cast<unsigned char>(rest[i]) |
                    (static_cast<unsigned char>(rest[i + 1]) << 8));
    try {
      (void)tokenizer->decode(ids);
    } catch (const lab::Error&) {
    }
  }
  return 0;
}
