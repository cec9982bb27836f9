// ctest-labels: model
// The real SmolLM2 tokenizer (GGUF metadata) against ids from Hugging Face `tokenizers`
// (tests/fixtures/tokenizer_ids.json, made by scripts/hf_tokenizer_fixture.py from the
// tokenizer.json this project exports), the third-party vectors of model_formats.md §5.5, and
// ChatML. Skips when the model is not in the cache (scripts/fetch_model.sh).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/bpe_tokenizer.hpp"
#include "common/gguf.hpp"
#include "common/model_source.hpp"

namespace {

std::shared_ptr<lab::BpeTokenizer> smollm2_tokenizer() {
  static std::shared_ptr<lab::BpeTokenizer> t = [] {
    const lab::GgufFile f(lab::smollm2_gguf_path());
    return lab::BpeTokenizer::from_gguf(f);
  }();
  return t;
}

#define SKIP_WITHOUT_MODEL()                                                  \
  if (!std::filesystem::exists(lab::smollm2_gguf_path()))                     \
  GTEST_SKIP() << "SmolLM2 is not in the cache (" << lab::smollm2_gguf_path() \
               << "): run scripts/fetch_model.sh to enable the real-model tests"

TEST(SmolLm2Tokenizer, MatchesHuggingFaceTokenizers) {
  SKIP_WITHOUT_MODEL();
  const auto t = smollm2_tokenizer();
  std::ifstream in(std::string(LAB_SOURCE_DIR) + "/tests/fixtures/tokenizer_ids.json");
  ASSERT_TRUE(in) << "missing fixture";
  const auto fixture = nlohmann::json::parse(in);
  ASSERT_GE(fixture["cases"].size(), 30u);
  for (const auto& c : fixture["cases"]) {
    const auto text = c["text"].get<std::string>();
    EXPECT_EQ(t->encode(text), c["ids"].get<std::vector<int>>()) << c["text"].dump();
    EXPECT_EQ(t->decode(c["ids"].get<std::vector<int>>()), c["decoded"].get<std::string>())
        << c["text"].dump();
  }
}

TEST(SmolLm2Tokenizer, ThirdPartyVectors) {
  SKIP_WITHOUT_MODEL();
  const auto t = smollm2_tokenizer();
  using V = std::vector<int>;
  EXPECT_EQ(t->encode("Hello world! 123"), (V{19556, 905, 17, 216, 33, 34, 35}));
  EXPECT_EQ(t->encode("\n"), (V{198}));
  EXPECT_EQ(t->encode("  multiple   spaces"), (V{216, 2701, 256, 5600}));
  EXPECT_EQ(t->encode("The capital of France is"), (V{504, 3575, 282, 4649, 314}));
  EXPECT_EQ(t->encode("Hello, we can use"), (V{19556, 28, 392, 416, 722}));
}

TEST(SmolLm2Tokenizer, SpecialIdsAndChatTemplate) {
  SKIP_WITHOUT_MODEL();
  const auto t = smollm2_tokenizer();
  EXPECT_EQ(t->vocab_size(), 49152);
  EXPECT_EQ(t->bos_id(), 1);
  EXPECT_EQ(t->eos_id(), 2);
  EXPECT_FALSE(t->add_bos());
  EXPECT_TRUE(t->is_end_of_generation(2));  // <|im_end|>
  EXPECT_TRUE(t->is_end_of_generation(0));  // <|endoftext|>
  EXPECT_FALSE(t->is_end_of_generation(1));
  const std::string prompt = t->apply_chat_template({{"user", "What is the capital of France?"}});
  EXPECT_EQ(prompt,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
            "Face<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
            "<|im_start|>assistant\n");
  const auto ids = t->encode(prompt);
  EXPECT_EQ(ids.front(), 1);  // the template starts with <|im_start|> = bos: no extra BOS
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 1), 3);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 2), 2);
  EXPECT_EQ(t->decode(ids), prompt);
}

TEST(SmolLm2Tokenizer, ExportedTokenizerJsonEncodesTheSame) {
  SKIP_WITHOUT_MODEL();
  const auto t = smollm2_tokenizer();
  // Written next to the build, for scripts/hf_tokenizer_fixture.py to regenerate the fixture.
  const auto dir = std::filesystem::path(LAB_BINARY_DIR) / "smollm2_tokenizer";
  std::filesystem::create_directories(dir);
  const nlohmann::json j = t->to_tokenizer_json();
  std::ofstream(dir / "tokenizer.json") << j.dump();
  const auto back = lab::BpeTokenizer::from_tokenizer_json(j, 1, 2, t->vocabulary().chat_template);
  for (std::string s : {"Hello world! 123", "don't stop 😀 中文 <|im_end|>", "  x  \n\n"})
    EXPECT_EQ(back->encode(s), t->encode(s)) << s;
  EXPECT_EQ(back->apply_chat_template({{"user", "hi"}}), t->apply_chat_template({{"user", "hi"}}));
}

}  // namespace
