#pragma once
/// \file
/// \brief Text ↔ token ids. The `tiny` preset uses ByteTokenizer; real models use byte-level BPE.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lab {

/// One message of a chat ("system", "user" or "assistant").
struct ChatMessage {
  std::string role;
  std::string content;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  /// Text to ids. Adds no BOS: callers add it when the model wants one (see bos_id()).
  virtual std::vector<int> encode(std::string_view text) const = 0;
  /// Ids to text; throws lab::Error for an id outside the vocabulary.
  virtual std::string decode(const std::vector<int>& ids) const = 0;
  /// Size of the vocabulary the ids index.
  virtual int vocab_size() const = 0;
  /// Beginning/end-of-sequence ids, -1 when the model has none.
  virtual int bos_id() const = 0;
  virtual int eos_id() const = 0;
  /// Whether a plain prompt starts with the BOS token (per the model's metadata; SmolLM2: no).
  virtual bool add_bos() const { return bos_id() >= 0; }
  /// True for ids that end a generation (EOS and, for chat models, the end-of-turn token).
  virtual bool is_end_of_generation(int id) const { return id == eos_id(); }
  /// The prompt text for a chat, ending where the assistant's reply begins. The default is the
  /// messages' contents joined by newlines (no template).
  virtual std::string apply_chat_template(const std::vector<ChatMessage>& messages) const;
};

/// The `tiny` preset's vocabulary: ids 0..255 are the bytes, 256 is `<bos>`, 257 is `<eos>`.
class ByteTokenizer final : public Tokenizer {
 public:
  static constexpr int kBos = 256;
  static constexpr int kEos = 257;
  std::vector<int> encode(std::string_view text) const override;
  std::string decode(const std::vector<int>& ids) const override;
  int vocab_size() const override { return 258; }
  int bos_id() const override { return kBos; }
  int eos_id() const override { return kEos; }
};

}  // namespace lab
