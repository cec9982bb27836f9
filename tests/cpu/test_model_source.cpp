// load_model(): presets, "smollm2" from the cache (and the message when it is missing), a .gguf
// path, an HF directory, and clear errors for anything else.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>

#include "common/error.hpp"
#include "common/gguf_llama.hpp"
#include "common/hf_export.hpp"
#include "common/model_source.hpp"

namespace {

namespace fs = std::filesystem;

void expect_error(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no error; expected '" << needle << "'";
  } catch (const lab::Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(ModelSource, CacheDirectoryFollowsTheEnvironment) {
  const char* old = std::getenv("LAB_MODEL_DIR");
  const std::string saved = old ? old : "";
  ::setenv("LAB_MODEL_DIR", "/tmp/lab-empty-cache", 1);
  EXPECT_EQ(lab::model_cache_dir(), "/tmp/lab-empty-cache");
  EXPECT_EQ(lab::smollm2_gguf_path(), "/tmp/lab-empty-cache/SmolLM2-135M-Instruct.Q4_1.gguf");
  expect_error([] { lab::load_model("smollm2", 1); }, "run scripts/fetch_model.sh");
  ::unsetenv("LAB_MODEL_DIR");
  EXPECT_NE(lab::model_cache_dir().find(".cache/inference-lab"), std::string::npos);
  if (old) ::setenv("LAB_MODEL_DIR", saved.c_str(), 1);
}

TEST(ModelSource, LoadsAGgufPath) {
  const auto tiny = lab::load_model("tiny", 21);
  const auto path = fs::temp_directory_path() / "lab_test_tiny.gguf";
  lab::llama_gguf_writer(tiny).write(path.string());
  const auto m = lab::load_model(path.string(), 0);
  EXPECT_NE(m.source.find("GGUF v3"), std::string::npos) << m.source;
  for (const auto& [name, t] : tiny.weights.tensors) EXPECT_EQ(m.weights.at(name).data, t.data);
  ASSERT_TRUE(m.tokenizer);
  EXPECT_EQ(m.tokenizer->encode("abc"), tiny.tokenizer->encode("abc"));
  fs::remove(path);
}

TEST(ModelSource, LoadsAnHfDirectory) {
  const auto tiny = lab::load_model("tiny", 22);
  const auto dir = fs::temp_directory_path() / "lab_test_model_source_hf";
  fs::remove_all(dir);
  lab::export_hf_directory(tiny, dir.string());
  const auto m = lab::load_model(dir.string(), 0);
  EXPECT_NE(m.source.find("Hugging Face directory"), std::string::npos);
  EXPECT_EQ(m.weights.at("model.norm.weight").data, tiny.weights.at("model.norm.weight").data);
  fs::remove_all(dir);
}

TEST(ModelSource, ClearErrors) {
  expect_error([] { lab::load_model("no-such-model", 1); }, "neither a preset");
  const auto text = fs::temp_directory_path() / "lab_test_not_a_model.txt";
  std::ofstream(text) << "hello";
  expect_error([&] { lab::load_model(text.string(), 1); }, "not a .gguf");
  const auto fake = fs::temp_directory_path() / "lab_test_fake.gguf";
  std::ofstream(fake) << "GGUF but not really";
  expect_error([&] { lab::load_model(fake.string(), 1); }, "GGUF '");
  const auto empty_dir = fs::temp_directory_path() / "lab_test_empty_dir";
  fs::create_directories(empty_dir);
  expect_error([&] { lab::load_model(empty_dir.string(), 1); }, "has no config.json");
  fs::remove(text);
  fs::remove(fake);
  fs::remove_all(empty_dir);
}

}  // namespace
