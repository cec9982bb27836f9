// Writes the fuzzers' seed corpora: small valid files made by the project's own writers, so the
// fuzzers start from inputs that reach deep into the parsers.
//   fuzz_make_seeds OUT_DIR   ->  OUT_DIR/{gguf,safetensors,hf_config,tokenizer}/...
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/gguf.hpp"
#include "common/gguf_llama.hpp"
#include "common/hf_config.hpp"
#include "common/model_source.hpp"
#include "common/safetensors.hpp"

namespace fs = std::filesystem;

namespace {
void write_file(const fs::path& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}
void write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path) << text;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_seeds OUT_DIR\n");
    return 2;
  }
  const fs::path out = argv[1];
  for (const char* d : {"gguf", "safetensors", "hf_config", "tokenizer"})
    fs::create_directories(out / d);

  // A 1-layer model keeps the seeds small (a few tens of kB), so mutations stay fast.
  lab::LoadedModel model = lab::load_model("tiny", 7);
  lab::ModelConfig small = model.weights.config;
  small.num_layers = 1;
  small.intermediate_size = 32;
  model.weights = lab::random_weights(small, 7);

  write_file(out / "gguf" / "tiny_f32.gguf",
             lab::llama_gguf_writer(model, lab::GgmlType::F32).serialize());
  for (auto type : {lab::GgmlType::F16, lab::GgmlType::BF16}) {
    try {
      write_file(out / "gguf" / ("tiny_type" + std::to_string(static_cast<int>(type)) + ".gguf"),
                 lab::llama_gguf_writer(model, type).serialize());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "fuzz_make_seeds: skipping GGUF type %d: %s\n", static_cast<int>(type),
                   e.what());
    }
  }

  std::vector<std::pair<std::string, const lab::Tensor*>> tensors;
  for (const auto& [name, t] : model.weights.tensors) tensors.emplace_back(name, &t);
  write_file(out / "safetensors" / "tiny_f32.safetensors",
             lab::serialize_safetensors(tensors, lab::DType::FP32));
  tensors.resize(3);
  write_file(out / "safetensors" / "tiny_bf16.safetensors",
             lab::serialize_safetensors(tensors, lab::DType::BF16));

  write_text(out / "hf_config" / "tiny.json", lab::hf_config_json(small).dump(2));
  write_text(out / "hf_config" / "smollm2.json",
             lab::hf_config_json(lab::preset("smollm2-135m")).dump(2));

  // Tokenizer seeds: first byte even = encode the rest, odd = decode the rest as 16-bit ids.
  const char* texts[] = {
      "Hello world! 123",       "  multiple   spaces", "don't we'll",
      "日本語のテキスト",       "emoji 🙂🚀",      "<|im_start|>user\nhi<|im_end|>\n",
      "tabs\tand\nnewlines\r\n"};
  int i = 0;
  for (const char* t : texts)
    write_text(out / "tokenizer" / ("text" + std::to_string(i++)), std::string("\0", 1) + t);
  write_text(out / "tokenizer" / "ids", std::string("\1\x10\x00\x20\x01\xff\xff", 7));
  std::printf("fuzz_make_seeds: corpora written to %s\n", out.c_str());
  return 0;
}
