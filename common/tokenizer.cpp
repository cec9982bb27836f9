#include "common/tokenizer.hpp"

#include "common/error.hpp"

namespace lab {

std::string Tokenizer::apply_chat_template(const std::vector<ChatMessage>& messages) const {
  std::string text;
  for (const auto& m : messages) {
    if (!text.empty()) text += '\n';
    text += m.content;
  }
  return text;
}

std::vector<int> ByteTokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  ids.reserve(text.size());
  for (unsigned char c : text) ids.push_back(c);
  return ids;
}

std::string ByteTokenizer::decode(const std::vector<int>& ids) const {
  std::string text;
  for (int id : ids) {
    if (id < 0 || id >= vocab_size())
      throw Error("token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                  std::to_string(vocab_size() - 1) + ")");
    if (id < 256) text += static_cast<char>(id);  // <bos>/<eos> print as nothing
  }
  return text;
}

}  // namespace lab
