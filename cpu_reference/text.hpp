#pragma once
/// \file
/// \brief Prompts and printable text for the chapters: building the prompt's token ids, parsing
/// token lists, escaping bytes a terminal cannot show, and streaming text as tokens arrive.

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/tokenizer.hpp"

namespace lab::cpu {

/// Token ids of a prompt. A non-empty `chat` is a user message put through the tokenizer's chat
/// template (which carries its own special tokens); otherwise `prompt` is encoded after the BOS
/// token when the model wants one (Tokenizer::add_bos()). Throws lab::Error when the result is
/// empty.
std::vector<int> prompt_tokens(const Tokenizer& tokenizer, const std::string& prompt,
                               const std::string& chat);

/// Parses "1,2,3" (commas or spaces) into ids and checks each is in [0, vocab_size).
std::vector<int> parse_token_list(const std::string& text, int vocab_size);

/// Text with control bytes and invalid UTF-8 written as \\xNN, so every byte is visible.
std::string printable(std::string_view text);

/// One token as printable text, e.g. "'a'" or "<id 256>" for a token that decodes to nothing.
std::string token_label(const Tokenizer& tokenizer, int id);

/// Turns a stream of ids into a stream of text. Decoding ids one by one would split multi-byte
/// characters that BPE spreads over several tokens, so it decodes everything so far and returns
/// only the new, complete part.
class TextStream {
 public:
  explicit TextStream(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}
  /// Adds `id` and returns the text that became complete (printable()-escaped).
  std::string push(int id);

 private:
  const Tokenizer& tokenizer_;
  std::vector<int> ids_;
  std::size_t emitted_ = 0;  // bytes of the decoded text already returned
};

}  // namespace lab::cpu
