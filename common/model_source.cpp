#include "common/model_source.hpp"

#include "common/error.hpp"

namespace lab {

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
  throw Error(
      "--model: cannot load '" + spec +
      "': model files are not supported yet (presets: tiny, smollm2-135m, llama2-7b, llama3-8b)");
}

}  // namespace lab
