#include "common/bpe_tokenizer.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <climits>
#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/gguf.hpp"

namespace lab {

namespace {

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Decodes the code point at s[i] and advances i; a malformed byte decodes as itself (as Latin-1)
// so that nothing is lost.
char32_t next_code_point(std::string_view s, std::size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  int length = b0 < 0x80           ? 1
               : (b0 >> 5) == 0x6  ? 2
               : (b0 >> 4) == 0xE  ? 3
               : (b0 >> 3) == 0x1E ? 4
                                   : 0;
  if (length == 0 || i + length > s.size()) {
    ++i;
    return b0;
  }
  char32_t cp = length == 1   ? b0
                : length == 2 ? (b0 & 0x1F)
                : length == 3 ? (b0 & 0x0F)
                              : (b0 & 0x07);
  for (int k = 1; k < length; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) {
      ++i;
      return b0;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  i += length;
  return cp;
}

// The pre-tokenizer patterns. HF's ByteLevel adds the final `|\s+` to GPT-2's pattern.
[[noreturn]] void fail(const std::string& problem) {
  throw Error("tokenizer.json: " + problem);
}

[[noreturn]] void fail_gguf(const std::string& file, const std::string& problem) {
  throw Error("GGUF '" + file + "': tokenizer: " + problem);
}

constexpr const char* kDigitsPattern = R"(\p{N})";
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

}  // namespace

// A compiled PCRE2 pattern in UTF mode with Unicode properties (\p{L}, \s, ...), JIT-compiled
// when the library supports it. Invalid UTF-8 in the text is allowed and never matches.
struct BpeTokenizer::Regex {
  pcre2_code* code = nullptr;

  explicit Regex(const char* pattern) {
    int error = 0;
    PCRE2_SIZE error_offset = 0;
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern), PCRE2_ZERO_TERMINATED,
                         PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error, &error_offset,
                         nullptr);
    if (code == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof message);
      throw Error(std::string("PCRE2 cannot compile the pre-tokenizer regex: ") +
                  reinterpret_cast<const char*>(message));
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // optional: falls back to the interpreter
  }
  ~Regex() { pcre2_code_free(code); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Cuts `text` into the matches and the (possibly empty) gaps between them, in order
  // (HF's "Isolated" split behaviour).
  void split(std::string_view text, std::vector<std::string_view>& out) const {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
    if (md == nullptr) throw Error("out of memory for PCRE2 match data");
    std::size_t start = 0, gap = 0;
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    while (start < text.size()) {
      const int rc = pcre2_match(code, subject, text.size(), start, 0, md, nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        pcre2_match_data_free(md);
        throw Error("PCRE2 match failed (code " + std::to_string(rc) + ")");
      }
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      if (ov[0] > gap) out.push_back(text.substr(gap, ov[0] - gap));
      if (ov[1] > ov[0]) out.push_back(text.substr(ov[0], ov[1] - ov[0]));
      gap = ov[1];
      start = ov[1] > ov[0] ? ov[1] : ov[0] + 1;  // never loop on an empty match
    }
    if (gap < text.size()) out.push_back(text.substr(gap));
    pcre2_match_data_free(md);
  }
};

//! [bytes_to_unicode]
std::array<char32_t, 256> bytes_to_unicode() {
  std::array<char32_t, 256> table{};
  char32_t next = 0x100;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    table[b] = printable ? static_cast<char32_t>(b) : next++;
  }
  return table;
}
//! [bytes_to_unicode]

BpeVocabulary byte_tokenizer_vocabulary() {
  BpeVocabulary v;
  const auto table = bytes_to_unicode();
  for (int b = 0; b < 256; ++b) {
    std::string symbol;
    append_utf8(symbol, table[b]);
    v.tokens.push_back(symbol);
  }
  v.tokens.push_back("<bos>");
  v.tokens.push_back("<eos>");
  v.special_ids = {ByteTokenizer::kBos, ByteTokenizer::kEos};
  v.bos_id = ByteTokenizer::kBos;
  v.eos_id = ByteTokenizer::kEos;
  v.pre_tokenizer = PreTokenizer::kNone;
  return v;
}

BpeTokenizer::~BpeTokenizer() = default;

BpeTokenizer::BpeTokenizer(BpeVocabulary vocabulary) : vocab_(std::move(vocabulary)) {
  const int n = static_cast<int>(vocab_.tokens.size());
  require(n > 0, "tokenizer: the vocabulary is empty");
  token_to_id_.reserve(vocab_.tokens.size());
  for (int id = 0; id < n; ++id) token_to_id_.emplace(vocab_.tokens[id], id);  // first id wins

  const auto table = bytes_to_unicode();
  for (int b = 0; b < 256; ++b) {
    append_utf8(byte_symbol_[b], table[b]);
    symbol_byte_[table[b]] = static_cast<std::uint8_t>(b);
  }

  merge_rank_.reserve(vocab_.merges.size());
  for (std::size_t r = 0; r < vocab_.merges.size(); ++r) {
    const auto& [left, right] = vocab_.merges[r];
    if (!token_to_id_.count(left) || !token_to_id_.count(right) ||
        !token_to_id_.count(left + right))
      throw Error("tokenizer: merge " + std::to_string(r) + " ('" + left + "' '" + right +
                  "') names a token that is not in the vocabulary");
    merge_rank_.emplace(left + " " + right, static_cast<int>(r));  // the first rank wins
  }

  auto check_id = [n](int id, const char* what) {
    if (id < -1 || id >= n)
      throw Error(std::string("tokenizer: ") + what + " id " + std::to_string(id) +
                  " is outside the vocabulary (0.." + std::to_string(n - 1) + ")");
  };
  check_id(vocab_.bos_id, "bos");
  check_id(vocab_.eos_id, "eos");
  is_special_.assign(vocab_.tokens.size(), false);
  for (int id : vocab_.special_ids) {
    check_id(id, "special token");
    if (id < 0 || vocab_.tokens[id].empty()) continue;
    is_special_[id] = true;
    specials_by_first_byte_[static_cast<unsigned char>(vocab_.tokens[id][0])].push_back(id);
  }
  for (auto& ids : specials_by_first_byte_)
    std::stable_sort(ids.begin(), ids.end(), [this](int a, int b) {
      return vocab_.tokens[a].size() > vocab_.tokens[b].size();
    });
  for (int id : vocab_.end_of_generation_ids) check_id(id, "end-of-generation");

  // The default system turn of a ChatML template: the literal text between
  // "<|im_start|>system\n" and "<|im_end|>", used when the chat does not start with a system
  // message (SmolLM2: "You are a helpful AI assistant named SmolLM, trained by Hugging Face").
  const std::string& t = vocab_.chat_template;
  for (std::string_view newline : {"\n", "\\n"}) {
    const std::string head = "<|im_start|>system" + std::string(newline);
    const auto begin = t.find(head);
    if (begin == std::string::npos) continue;
    const auto end = t.find("<|im_end|>", begin + head.size());
    if (end != std::string::npos)
      default_system_ = t.substr(begin + head.size(), end - begin - head.size());
    break;
  }

  if (vocab_.pre_tokenizer == PreTokenizer::kSmolLm)
    digits_ = std::make_unique<Regex>(kDigitsPattern);
  if (vocab_.pre_tokenizer != PreTokenizer::kNone) words_ = std::make_unique<Regex>(kGpt2Pattern);
}

int BpeTokenizer::token_id(std::string_view token) const {
  auto it = token_to_id_.find(std::string(token));
  return it == token_to_id_.end() ? -1 : it->second;
}

std::vector<std::string> BpeTokenizer::pre_tokenize(std::string_view text) const {
  std::vector<std::string_view> spans{text};
  if (digits_) {
    spans.clear();
    digits_->split(text, spans);  // every numeric character becomes its own span
  }
  std::vector<std::string_view> words;
  if (words_) {
    for (auto span : spans) words_->split(span, words);
  } else {
    words = spans;
  }
  std::vector<std::string> out;
  for (auto w : words)
    if (!w.empty()) out.emplace_back(w);
  return out;
}

//! [bpe_merge]
void BpeTokenizer::encode_word(std::string_view word, std::vector<int>& ids) const {
  // One symbol per byte, written in GPT-2's printable alphabet ("Ġ" for a space).
  std::vector<std::string> symbols;
  symbols.reserve(word.size());
  for (unsigned char b : word) symbols.push_back(byte_symbol_[b]);
  if (vocab_.ignore_merges) {
    std::string whole;
    for (const auto& s : symbols) whole += s;
    if (auto it = token_to_id_.find(whole); it != token_to_id_.end()) {
      ids.push_back(it->second);
      return;
    }
  }
  // Merge the adjacent pair with the lowest rank (the leftmost on a tie) until none is known.
  while (symbols.size() > 1) {
    int best_rank = INT_MAX;
    std::size_t best = 0;
    for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
      auto it = merge_rank_.find(symbols[i] + " " + symbols[i + 1]);
      if (it != merge_rank_.end() && it->second < best_rank) {
        best_rank = it->second;
        best = i;
      }
    }
    if (best_rank == INT_MAX) break;
    symbols[best] += symbols[best + 1];
    symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(best) + 1);
  }
  // Each symbol is a token; should one be missing, fall back to its single-byte tokens. A byte
  // the vocabulary lacks altogether (SmolLM2 has no token for 0x04 or 0xFF, bytes that UTF-8 text
  // rarely or never holds) is dropped, as HF's BPE does without an unknown token.
  for (const auto& s : symbols) {
    if (auto it = token_to_id_.find(s); it != token_to_id_.end()) {
      ids.push_back(it->second);
      continue;
    }
    std::size_t i = 0;
    while (i < s.size()) {
      std::size_t start = i;
      next_code_point(s, i);
      if (auto it = token_to_id_.find(s.substr(start, i - start)); it != token_to_id_.end())
        ids.push_back(it->second);
    }
  }
}
//! [bpe_merge]

std::vector<int> BpeTokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  std::size_t span_start = 0, pos = 0;
  auto flush = [&](std::size_t end) {
    if (end > span_start)
      for (const auto& word : pre_tokenize(text.substr(span_start, end - span_start)))
        encode_word(word, ids);
  };
  // Special tokens are found first and never cut by the regex or merged (longest match wins).
  while (pos < text.size()) {
    int match = -1;
    for (int id : specials_by_first_byte_[static_cast<unsigned char>(text[pos])]) {
      if (text.substr(pos).starts_with(vocab_.tokens[id])) {
        match = id;
        break;
      }
    }
    if (match < 0) {
      ++pos;
      continue;
    }
    flush(pos);
    ids.push_back(match);
    pos += vocab_.tokens[match].size();
    span_start = pos;
  }
  flush(text.size());
  return ids;
}

std::string BpeTokenizer::decode(const std::vector<int>& ids) const {
  std::string out;
  for (int id : ids) {
    if (id < 0 || id >= vocab_size())
      throw Error("token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                  std::to_string(vocab_size() - 1) + ")");
    const std::string& token = vocab_.tokens[id];
    if (is_special_[id]) {
      out += token;
      continue;
    }
    std::size_t i = 0;
    while (i < token.size()) {
      const std::size_t start = i;
      const char32_t cp = next_code_point(token, i);
      if (auto it = symbol_byte_.find(cp); it != symbol_byte_.end())
        out += static_cast<char>(it->second);
      else
        out.append(token, start, i - start);
    }
  }
  return out;
}

bool BpeTokenizer::is_end_of_generation(int id) const {
  if (id == vocab_.eos_id && id >= 0) return true;
  return std::find(vocab_.end_of_generation_ids.begin(), vocab_.end_of_generation_ids.end(), id) !=
         vocab_.end_of_generation_ids.end();
}

//! [chat_template]
std::string BpeTokenizer::apply_chat_template(const std::vector<ChatMessage>& messages) const {
  if (token_id("<|im_start|>") < 0 || token_id("<|im_end|>") < 0)
    return Tokenizer::apply_chat_template(messages);
  std::string text;
  const bool has_system = !messages.empty() && messages.front().role == "system";
  if (!has_system && !default_system_.empty())
    text += "<|im_start|>system\n" + default_system_ + "<|im_end|>\n";
  for (const auto& m : messages)
    text += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  text += "<|im_start|>assistant\n";  // the generation prompt
  return text;
}
//! [chat_template]

// --- GGUF -----------------------------------------------------------------------------------

std::shared_ptr<BpeTokenizer> BpeTokenizer::from_gguf(const GgufFile& file) {
  auto bad = [&](const std::string& problem) { fail_gguf(file.name(), problem); };
  const auto model = file.find_string("tokenizer.ggml.model");
  if (!model) bad("no tokenizer.ggml.model key");
  if (*model != "gpt2")
    bad("tokenizer model '" + *model + "' is not supported (only byte-level BPE, \"gpt2\")");
  BpeVocabulary v;
  const auto pre = file.find_string("tokenizer.ggml.pre").value_or("gpt2");
  // llama.cpp gives these pre-tokenizer names the same regex list: \p{N} alone, then GPT-2's.
  if (pre == "smollm" || pre == "starcoder" || pre == "refact" || pre == "codeshell")
    v.pre_tokenizer = PreTokenizer::kSmolLm;
  else if (pre == "gpt2" || pre == "default")
    v.pre_tokenizer = PreTokenizer::kGpt2;
  else
    bad("pre-tokenizer '" + pre + "' is not supported (supported: smollm, gpt2)");

  const GgufValue* tokens = file.find("tokenizer.ggml.tokens");
  if (!tokens || tokens->type != GgufValueType::ARRAY ||
      tokens->element_type != GgufValueType::STRING || tokens->strings.empty())
    bad("tokenizer.ggml.tokens must be a non-empty array of strings");
  v.tokens = tokens->strings;

  if (const GgufValue* types = file.find("tokenizer.ggml.token_type")) {
    if (types->type != GgufValueType::ARRAY || types->integers.size() != v.tokens.size())
      bad("tokenizer.ggml.token_type must be an integer array with one entry per token");
    for (std::size_t id = 0; id < types->integers.size(); ++id) {
      const auto type = types->integers[id];
      if (type == 3 || type == 4) v.special_ids.push_back(static_cast<int>(id));  // control, user
    }
  }
  if (const GgufValue* merges = file.find("tokenizer.ggml.merges")) {
    if (merges->type != GgufValueType::ARRAY || merges->element_type != GgufValueType::STRING)
      bad("tokenizer.ggml.merges must be an array of strings");
    v.merges.reserve(merges->strings.size());
    for (std::size_t r = 0; r < merges->strings.size(); ++r) {
      const std::string& m = merges->strings[r];
      const auto space = m.find(' ');
      if (space == std::string::npos || space == 0 || space + 1 == m.size() ||
          m.find(' ', space + 1) != std::string::npos)
        bad("merge " + std::to_string(r) + " '" + m + "' is not \"left right\"");
      v.merges.emplace_back(m.substr(0, space), m.substr(space + 1));
    }
  }
  const int n = static_cast<int>(v.tokens.size());
  auto id_key = [&](const char* key) {
    const auto id = file.find_int(key);
    if (!id) return -1;
    if (*id < 0 || *id >= n)
      bad(std::string(key) + " = " + std::to_string(*id) + " is outside the vocabulary");
    return static_cast<int>(*id);
  };
  v.bos_id = id_key("tokenizer.ggml.bos_token_id");
  v.eos_id = id_key("tokenizer.ggml.eos_token_id");
  v.add_bos = file.find_bool("tokenizer.ggml.add_bos_token").value_or(false);
  v.chat_template = file.find_string("tokenizer.chat_template").value_or("");
  // Like llama.cpp, also stop on the usual end-of-turn tokens when the vocabulary has them.
  for (std::string_view eog : {"<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>"})
    for (int id : v.special_ids)
      if (v.tokens[id] == eog) v.end_of_generation_ids.push_back(id);
  return std::make_shared<BpeTokenizer>(std::move(v));
}

// --- tokenizer.json -------------------------------------------------------------------------

std::shared_ptr<BpeTokenizer> BpeTokenizer::from_tokenizer_json(const nlohmann::json& j, int bos_id,
                                                                int eos_id,
                                                                std::string chat_template) {
  try {
    if (!j.is_object()) fail("not a JSON object");
    const auto& model = j.at("model");
    if (model.value("type", std::string("BPE")) != "BPE")
      fail("model type '" + model.at("type").get<std::string>() + "' is not supported (only BPE)");
    if (model.value("byte_fallback", false)) fail("byte_fallback BPE is not supported");
    if (j.contains("normalizer") && !j.at("normalizer").is_null())
      fail("normalizers are not supported");
    BpeVocabulary v;
    v.ignore_merges = model.value("ignore_merges", false);

    // Pre-tokenizer: Sequence[Digits(individual), ByteLevel(regex)] | ByteLevel.
    const auto& pre = j.at("pre_tokenizer");
    auto byte_level = [&](const nlohmann::json& p) {
      if (p.at("type") != "ByteLevel") return false;
      if (p.value("add_prefix_space", false)) fail("ByteLevel add_prefix_space is not supported");
      return true;
    };
    if (pre.is_object() && pre.at("type") == "Sequence") {
      const auto& list = pre.at("pretokenizers");
      if (list.size() != 2 || list[0].at("type") != "Digits" ||
          !list[0].value("individual_digits", false) || !byte_level(list[1]) ||
          !list[1].value("use_regex", true))
        fail("only the pre-tokenizer Sequence[Digits(individual_digits), ByteLevel] is supported");
      v.pre_tokenizer = PreTokenizer::kSmolLm;
    } else if (pre.is_object() && byte_level(pre)) {
      v.pre_tokenizer = pre.value("use_regex", true) ? PreTokenizer::kGpt2 : PreTokenizer::kNone;
    } else {
      fail("unsupported pre_tokenizer");
    }

    const auto& vocab = model.at("vocab");
    if (!vocab.is_object()) fail("model.vocab is not an object");
    std::int64_t size = 0;
    for (const auto& [token, id] : vocab.items()) {
      if (!id.is_number_integer() || id.get<std::int64_t>() < 0 ||
          id.get<std::int64_t>() >= (1 << 24))
        fail("token '" + token + "' has an invalid id");
      size = std::max(size, id.get<std::int64_t>() + 1);
    }
    const auto& added = j.value("added_tokens", nlohmann::json::array());
    for (const auto& a : added) {
      // Checked as an integer first: converting a float id would be undefined behaviour.
      if (!a.at("id").is_number_integer()) fail("added token with a non-integer id");
      const auto id = a.at("id").get<std::int64_t>();
      if (id < 0 || id >= (1 << 24)) fail("added token with an invalid id");
      size = std::max(size, id + 1);
    }
    v.tokens.assign(static_cast<std::size_t>(size), std::string());
    std::vector<bool> filled(v.tokens.size(), false);
    for (const auto& [token, id] : vocab.items()) {
      const auto i = id.get<std::size_t>();
      if (filled[i]) fail("id " + std::to_string(i) + " is used twice");
      v.tokens[i] = token;
      filled[i] = true;
    }
    for (const auto& a : added) {
      const auto i = a.at("id").get<std::size_t>();
      const auto content = a.at("content").get<std::string>();
      if (filled[i] && v.tokens[i] != content)
        fail("added token " + std::to_string(i) + " disagrees with the vocabulary");
      v.tokens[i] = content;
      filled[i] = true;
      v.special_ids.push_back(static_cast<int>(i));  // HF splits out every added token
    }
    for (std::size_t i = 0; i < filled.size(); ++i)
      if (!filled[i]) fail("no token has id " + std::to_string(i) + " (the ids have a hole)");

    for (const auto& m : model.value("merges", nlohmann::json::array())) {
      if (m.is_string()) {
        const auto s = m.get<std::string>();
        const auto space = s.find(' ');
        if (space == std::string::npos) fail("merge '" + s + "' is not \"left right\"");
        v.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
      } else if (m.is_array() && m.size() == 2) {
        v.merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
      } else {
        fail("a merge is neither \"left right\" nor [left, right]");
      }
    }
    v.bos_id = bos_id;
    v.eos_id = eos_id;
    v.chat_template = std::move(chat_template);
    for (std::string_view eog : {"<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>"})
      for (int id : v.special_ids)
        if (v.tokens[id] == eog) v.end_of_generation_ids.push_back(id);
    return std::make_shared<BpeTokenizer>(std::move(v));
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("malformed: ") + e.what());
  }
}

nlohmann::json BpeTokenizer::to_tokenizer_json() const {
  using nlohmann::json;
  json added = json::array();
  for (int id = 0; id < vocab_size(); ++id) {
    if (!is_special_[id]) continue;
    added.push_back({{"id", id},
                     {"content", vocab_.tokens[id]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  json byte_level = {{"type", "ByteLevel"},
                     {"add_prefix_space", false},
                     {"trim_offsets", true},
                     {"use_regex", vocab_.pre_tokenizer != PreTokenizer::kNone}};
  json pre = byte_level;
  if (vocab_.pre_tokenizer == PreTokenizer::kSmolLm)
    pre = {{"type", "Sequence"},
           {"pretokenizers",
            json::array({{{"type", "Digits"}, {"individual_digits", true}}, byte_level})}};
  // The vocabulary holds every token but the added ones (HF keeps both lists; ids must agree).
  json vocab = json::object();
  for (int id = 0; id < vocab_size(); ++id)
    if (!vocab.contains(vocab_.tokens[id])) vocab[vocab_.tokens[id]] = id;
  json merges = json::array();
  for (const auto& [l, r] : vocab_.merges) merges.push_back(json::array({l, r}));
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer", nullptr},
          {"pre_tokenizer", pre},
          {"post_processor", nullptr},
          {"decoder",
           {{"type", "ByteLevel"},
            {"add_prefix_space", true},
            {"trim_offsets", true},
            {"use_regex", true}}},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr},
            {"fuse_unk", false},
            {"byte_fallback", false},
            {"ignore_merges", vocab_.ignore_merges},
            {"vocab", vocab},
            {"merges", merges}}}};
}

}  // namespace lab
