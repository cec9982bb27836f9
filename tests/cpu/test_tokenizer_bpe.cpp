// Byte-level BPE on a small hand-made vocabulary: the GPT-2 byte table, merges by rank, special
// tokens split out first, the SmolLM pre-tokenizer (digits alone, GPT-2 regex with Unicode
// classes), decode, tokenizer.json round trip, and ChatML.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/bpe_tokenizer.hpp"
#include "common/error.hpp"

namespace {

using lab::BpeTokenizer;
using lab::BpeVocabulary;

// Specials 0..1, then the 256 byte symbols, then merged tokens.
BpeVocabulary small_vocabulary() {
  BpeVocabulary v = lab::byte_tokenizer_vocabulary();  // 256 byte symbols + <bos>, <eos>
  v.tokens.resize(256);
  v.tokens.insert(v.tokens.begin(), {"<|im_start|>", "<|im_end|>"});
  v.special_ids = {0, 1};
  v.end_of_generation_ids = {1};
  for (const char* t : {"ab", "abc", "Ġa", "Ġab", "bc"}) v.tokens.push_back(t);
  // Ranks: "a b" first, then "ab c", then "Ġ a", "Ġa b"; "b c" is last so "abc" wins over "a bc".
  v.merges = {{"a", "b"}, {"ab", "c"}, {"Ġ", "a"}, {"Ġa", "b"}, {"b", "c"}};
  v.bos_id = -1;
  v.eos_id = 1;
  v.pre_tokenizer = lab::PreTokenizer::kSmolLm;
  v.chat_template = "{{ '<|im_start|>system\\nBe brief.<|im_end|>\\n' }}";
  return v;
}

int id_of(const BpeTokenizer& t, const std::string& s) {
  const int id = t.token_id(s);
  EXPECT_GE(id, 0) << s;
  return id;
}

TEST(BytesToUnicode, MatchesGpt2Table) {
  const auto table = lab::bytes_to_unicode();
  EXPECT_EQ(table[0x00], U'\u0100');
  EXPECT_EQ(table[0x09], U'\u0109');
  EXPECT_EQ(table[0x0A], U'\u010A');
  EXPECT_EQ(table[0x20], U'\u0120');  // 'Ġ'
  EXPECT_EQ(table[0x21], U'!');
  EXPECT_EQ(table[0x7F], U'\u0121');
  EXPECT_EQ(table[0xA0], U'\u0142');
  EXPECT_EQ(table[0xAD], U'\u0143');
  EXPECT_EQ(table[0xFF], U'\u00FF');
  std::vector<char32_t> sorted(table.begin(), table.end());
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end());  // a bijection
}

TEST(Bpe, MergesByRank) {
  const BpeTokenizer t(small_vocabulary());
  EXPECT_EQ(t.encode("abc"), std::vector<int>{id_of(t, "abc")});
  EXPECT_EQ(t.encode("ab"), std::vector<int>{id_of(t, "ab")});
  EXPECT_EQ(t.encode("bc"), std::vector<int>{id_of(t, "bc")});
  // " ab": "Ġ a" (rank 2) loses to "a b" (rank 0); then "Ġ ab" is no merge → two tokens.
  EXPECT_EQ(t.encode(" ab"), (std::vector<int>{id_of(t, "Ġ"), id_of(t, "ab")}));
  // " a": only "Ġ a" applies.
  EXPECT_EQ(t.encode(" a"), std::vector<int>{id_of(t, "Ġa")});
}

TEST(Bpe, SpecialTokensSplitFirst) {
  const BpeTokenizer t(small_vocabulary());
  const auto ids = t.encode("<|im_start|>ab<|im_end|>x");
  EXPECT_EQ(ids, (std::vector<int>{0, id_of(t, "ab"), 1, id_of(t, "x")}));
  // A broken special is ordinary text.
  EXPECT_EQ(t.encode("<|im_start").size(), 10u);
}

TEST(Bpe, PreTokenizerSplitsDigitsSpacesAndContractions) {
  const BpeTokenizer t(small_vocabulary());
  using V = std::vector<std::string>;
  EXPECT_EQ(t.pre_tokenize("Hello world! 123"), (V{"Hello", " world", "!", " ", "1", "2", "3"}));
  EXPECT_EQ(t.pre_tokenize("  multiple   spaces"), (V{" ", " multiple", "  ", " spaces"}));
  EXPECT_EQ(t.pre_tokenize("don't DON'T"), (V{"don", "'t", " DON", "'", "T"}));
  EXPECT_EQ(t.pre_tokenize("a\n\nb  "), (V{"a", "\n", "\n", "b", "  "}));
  EXPECT_EQ(t.pre_tokenize("x²½"), (V{"x", "²", "½"}));                  // \p{N} covers No
  EXPECT_EQ(t.pre_tokenize("日本語 Ελλάδα"), (V{"日本語", " Ελλάδα"}));  // \p{L} beyond ASCII
}

TEST(Bpe, DecodeInvertsEncodeOnAnyBytes) {
  const BpeTokenizer t(small_vocabulary());
  for (std::string s : {"abc ab a", "emoji 😀 and 中文", "tabs\tnewlines\n", "\xff\xfe bad utf8",
                        "<|im_start|>user\nhi<|im_end|>"})
    EXPECT_EQ(t.decode(t.encode(s)), s);
  EXPECT_THROW(t.decode({100000}), lab::Error);
}

TEST(Bpe, TokenizerJsonRoundTrip) {
  const BpeTokenizer t(small_vocabulary());
  const nlohmann::json j = t.to_tokenizer_json();
  EXPECT_EQ(j["pre_tokenizer"]["type"], "Sequence");
  EXPECT_EQ(j["model"]["type"], "BPE");
  EXPECT_EQ(j["added_tokens"].size(), 2u);
  const auto back = BpeTokenizer::from_tokenizer_json(nlohmann::json::parse(j.dump()), -1, 1,
                                                      t.vocabulary().chat_template);
  EXPECT_EQ(back->vocabulary().tokens, t.vocabulary().tokens);
  EXPECT_EQ(back->vocabulary().merges, t.vocabulary().merges);
  for (std::string s : {"abc ab 12 <|im_end|>", " a b c"}) EXPECT_EQ(back->encode(s), t.encode(s));
  EXPECT_TRUE(back->is_end_of_generation(1));
}

TEST(Bpe, TokenizerJsonWithAFloatIdIsAnError) {
  // A float id must be refused before any conversion (converting 1e300 to an integer is UB).
  const BpeTokenizer t(small_vocabulary());
  nlohmann::json j = t.to_tokenizer_json();
  j["added_tokens"][0]["id"] = 1e300;
  EXPECT_THROW(BpeTokenizer::from_tokenizer_json(j, -1, 1, ""), lab::Error);
  j = t.to_tokenizer_json();
  j["model"]["vocab"]["a"] = 2.5;
  EXPECT_THROW(BpeTokenizer::from_tokenizer_json(j, -1, 1, ""), lab::Error);
}

TEST(Bpe, ChatTemplateWithDefaultSystem) {
  const BpeTokenizer t(small_vocabulary());
  EXPECT_EQ(t.apply_chat_template({{"user", "Hi"}}),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(t.apply_chat_template({{"system", "S"}, {"user", "Hi"}}),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_TRUE(t.is_end_of_generation(1));
  EXPECT_FALSE(t.is_end_of_generation(0));
}

TEST(Bpe, ByteVocabularyEncodesLikeByteTokenizer) {
  const BpeTokenizer t(lab::byte_tokenizer_vocabulary());
  const lab::ByteTokenizer bytes;
  for (std::string s : {"hello 123", "\x01\xff", "<bo>x"})
    EXPECT_EQ(t.encode(s), bytes.encode(s)) << s;
  // One difference: the BPE form splits out "<bos>" written in the text as the special token.
  EXPECT_EQ(t.encode("<bos>"), std::vector<int>{lab::ByteTokenizer::kBos});
}

TEST(Bpe, RejectsBadVocabularies) {
  auto v = small_vocabulary();
  v.merges.push_back({"zz", "q"});
  try {
    BpeTokenizer t(v);
    ADD_FAILURE();
  } catch (const lab::Error& e) {
    EXPECT_NE(std::string(e.what()).find("merge 5"), std::string::npos) << e.what();
  }
  auto w = small_vocabulary();
  w.eos_id = 99999;
  EXPECT_THROW(BpeTokenizer{w}, lab::Error);
  EXPECT_THROW(
      BpeTokenizer::from_tokenizer_json(nlohmann::json::parse(R"({"model": {}})"), -1, -1, ""),
      lab::Error);
  EXPECT_THROW(BpeTokenizer::from_tokenizer_json(nlohmann::json::parse("[1, 2]"), -1, -1, ""),
               lab::Error);
}

}  // namespace
