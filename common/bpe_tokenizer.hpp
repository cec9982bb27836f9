#pragma once
/// \file
/// \brief Byte-level BPE (GPT-2 style), loaded from GGUF metadata or a Hugging Face tokenizer.json.
///
/// Encoding: split out special tokens, pre-tokenize each remaining span into words with a Unicode
/// regex (PCRE2), map each word's UTF-8 bytes to printable symbols (GPT-2's bytes_to_unicode),
/// then merge adjacent symbols by rank until no merge applies (reference/model_formats.md §5).

#include <array>
#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/tokenizer.hpp"

namespace lab {

class GgufFile;

/// How text is cut into words before BPE.
enum class PreTokenizer {
  kSmolLm,  ///< every numeric character alone, then the GPT-2 regex (HF: Digits + ByteLevel)
  kGpt2,    ///< the GPT-2 regex only (HF: ByteLevel with use_regex)
  kNone,    ///< no split: the whole span is one word (HF: ByteLevel without regex)
};

/// Everything that defines a byte-level BPE tokenizer.
struct BpeVocabulary {
  std::vector<std::string> tokens;  ///< id → token in byte-level symbols ("Ġthe")
  std::vector<std::pair<std::string, std::string>> merges;  ///< rank order: index 0 first
  std::vector<int> special_ids;  ///< matched literally in the text before BPE (e.g. <|im_start|>)
  std::vector<int> end_of_generation_ids;  ///< ids that end a reply
  int bos_id = -1;
  int eos_id = -1;
  bool add_bos = false;        ///< the model wants a BOS in front of a plain prompt
  bool ignore_merges = false;  ///< HF option: a word that is itself a token skips the merges
  PreTokenizer pre_tokenizer = PreTokenizer::kSmolLm;
  std::string chat_template;  ///< Jinja text from the model, kept for exports
};

/// GPT-2's reversible byte → printable code point table: 0x21..0x7E, 0xA1..0xAC and 0xAE..0xFF
/// map to themselves, the other 68 bytes to U+0100 + k in increasing order.
std::array<char32_t, 256> bytes_to_unicode();

/// The `tiny` preset's ByteTokenizer written as byte-level BPE: token b is byte b's symbol, no
/// merges, no regex, "<bos>" (256) and "<eos>" (257) special. Encodes exactly like ByteTokenizer.
BpeVocabulary byte_tokenizer_vocabulary();

class BpeTokenizer final : public Tokenizer {
 public:
  /// Validates the vocabulary (merges name existing tokens, ids in range) and builds the lookup
  /// tables; throws lab::Error naming the first problem.
  explicit BpeTokenizer(BpeVocabulary vocabulary);
  ~BpeTokenizer() override;

  /// From GGUF `tokenizer.ggml.*` keys (model "gpt2"), the chat template included.
  static std::shared_ptr<BpeTokenizer> from_gguf(const GgufFile& file);
  /// From a parsed HF tokenizer.json; bos/eos/chat template come from the caller (config files).
  static std::shared_ptr<BpeTokenizer> from_tokenizer_json(const nlohmann::json& tokenizer,
                                                           int bos_id, int eos_id,
                                                           std::string chat_template);
  /// An HF tokenizer.json that the `tokenizers` library loads and that encodes like this one.
  nlohmann::json to_tokenizer_json() const;

  std::vector<int> encode(std::string_view text) const override;
  /// Bytes are returned as they are (no U+FFFD for a split UTF-8 sequence), so decoding token by
  /// token and concatenating gives the same text as decoding all at once. Special tokens are
  /// printed literally.
  std::string decode(const std::vector<int>& ids) const override;
  int vocab_size() const override { return static_cast<int>(vocab_.tokens.size()); }
  int bos_id() const override { return vocab_.bos_id; }
  int eos_id() const override { return vocab_.eos_id; }
  bool is_end_of_generation(int id) const override;
  /// ChatML when the vocabulary has <|im_start|>/<|im_end|>: a default system turn when the
  /// model's template has one and the chat does not start with a system message, each message as
  /// "<|im_start|>role\ncontent<|im_end|>\n", then "<|im_start|>assistant\n".
  std::string apply_chat_template(const std::vector<ChatMessage>& messages) const override;

  /// Whether the model wants a BOS in front of a plain prompt (false for SmolLM2).
  bool add_bos() const override { return vocab_.add_bos; }
  /// The words the pre-tokenizer cuts `text` into (no special-token handling).
  std::vector<std::string> pre_tokenize(std::string_view text) const;
  /// The id of a token string, or -1.
  int token_id(std::string_view token) const;
  const BpeVocabulary& vocabulary() const { return vocab_; }

 private:
  struct Regex;
  void encode_word(std::string_view word, std::vector<int>& ids) const;

  BpeVocabulary vocab_;
  std::unordered_map<std::string, int> token_to_id_;
  std::unordered_map<std::string, int> merge_rank_;  ///< "left right" → rank
  std::array<std::string, 256> byte_symbol_;         ///< byte → its symbol in UTF-8
  std::unordered_map<char32_t, std::uint8_t> symbol_byte_;
  std::vector<bool> is_special_;
  std::array<std::vector<int>, 256> specials_by_first_byte_;  ///< longest first
  std::string default_system_;  ///< from the chat template; empty when it has none
  std::unique_ptr<Regex> digits_;
  std::unique_ptr<Regex> words_;
};

}  // namespace lab
