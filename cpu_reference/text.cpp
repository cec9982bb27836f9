#include "cpu_reference/text.hpp"

#include <cstdio>
#include <sstream>

#include "common/error.hpp"

namespace lab::cpu {

std::vector<int> prompt_tokens(const Tokenizer& tokenizer, const std::string& prompt,
                               const std::string& chat) {
  std::vector<int> ids;
  if (!chat.empty()) {
    ids = tokenizer.encode(tokenizer.apply_chat_template({{"user", chat}}));
  } else {
    if (tokenizer.add_bos() && tokenizer.bos_id() >= 0) ids.push_back(tokenizer.bos_id());
    const std::vector<int> text = tokenizer.encode(prompt);
    ids.insert(ids.end(), text.begin(), text.end());
  }
  require(!ids.empty(), "--prompt: the prompt is empty (give some text, or a model with a BOS)");
  return ids;
}

std::vector<int> parse_token_list(const std::string& text, int vocab_size) {
  std::string spaced = text;
  for (char& c : spaced)
    if (c == ',') c = ' ';
  std::istringstream in(spaced);
  std::vector<int> ids;
  std::string word;
  while (in >> word) {
    std::size_t used = 0;
    long long id = -1;
    try {
      id = std::stoll(word, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != word.size())
      throw Error("--tokens: '" + word + "' is not a token id (expected e.g. 256,72,105)");
    if (id < 0 || id >= vocab_size)
      throw Error("--tokens: id " + word + " is outside the vocabulary (0.." +
                  std::to_string(vocab_size - 1) + ")");
    ids.push_back(static_cast<int>(id));
  }
  require(!ids.empty(), "--tokens: the list is empty");
  return ids;
}

namespace {
// Length of the valid UTF-8 sequence starting at s[i], 0 if none (or it is cut off).
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  const std::size_t n = b < 0x80           ? 1
                        : (b >> 5) == 0x6  ? 2
                        : (b >> 4) == 0xE  ? 3
                        : (b >> 3) == 0x1E ? 4
                                           : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return 0;
  return n;
}
}  // namespace

std::string printable(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    const auto b = static_cast<unsigned char>(text[i]);
    const std::size_t n = utf8_length(text, i);
    if (n == 0 || (n == 1 && (b < 0x20 || b == 0x7F) && b != '\n')) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02X", b);
      out += hex;
      i += 1;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string token_label(const Tokenizer& tokenizer, int id) {
  const std::string text = tokenizer.decode({id});
  if (text.empty()) return "<id " + std::to_string(id) + ">";
  std::string shown = printable(text);
  for (std::size_t p = shown.find('\n'); p != std::string::npos; p = shown.find('\n', p))
    shown.replace(p, 1, "\\n");
  return "'" + shown + "'";
}

std::string TextStream::push(int id) {
  ids_.push_back(id);
  const std::string text = tokenizer_.decode(ids_);
  // Hold back a trailing partial UTF-8 character until the token that completes it arrives.
  std::size_t end = text.size();
  for (std::size_t back = 1; back <= 3 && back <= text.size(); ++back) {
    const auto b = static_cast<unsigned char>(text[text.size() - back]);
    if ((b >> 6) == 0x2) continue;  // continuation byte: look further back
    if (b >= 0xC0 && utf8_length(text, text.size() - back) == 0) end = text.size() - back;
    break;
  }
  if (end <= emitted_) return "";
  const std::string fresh = printable(std::string_view(text).substr(emitted_, end - emitted_));
  emitted_ = end;
  return fresh;
}

}  // namespace lab::cpu
