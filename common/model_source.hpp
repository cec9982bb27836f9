#pragma once
/// \file
/// \brief What `--model` names, turned into weights and a tokenizer.

#include <cstdint>
#include <memory>
#include <string>

#include "common/tokenizer.hpp"
#include "common/weights.hpp"

namespace lab {

/// A model ready to run: its weights (HF layout, fp32) and its tokenizer.
struct LoadedModel {
  ModelWeights weights;
  std::shared_ptr<const Tokenizer> tokenizer;
  std::string source;  ///< what was loaded, for printing ("preset tiny, seed 1234", a path, ...)
};

/// Resolves a `--model` value:
/// - a preset name ("tiny", "llama2-7b", ...): random weights from `seed` (ByteTokenizer for tiny);
/// - "smollm2": the real SmolLM2-135M-Instruct GGUF from the model cache (see
/// scripts/fetch_model.sh);
/// - a path to a .gguf file or to a Hugging Face directory (config.json + *.safetensors).
/// Throws lab::Error with a one-line explanation (and how to fix it) when that is not possible.
LoadedModel load_model(const std::string& spec, std::uint64_t seed);

/// load_model() for the chapters that generate text: the model must come with a tokenizer. Shape
/// presets other than tiny (random weights, no tokenizer) are refused before gigabytes of weights
/// are drawn for nothing; so is a model directory without tokenizer.json. Errors name `--model`.
LoadedModel load_text_model(const std::string& spec, std::uint64_t seed);

/// Where downloaded models live: $LAB_MODEL_DIR, else $HOME/.cache/inference-lab.
std::string model_cache_dir();

/// The file name of the course's real model inside the cache.
inline constexpr const char* kSmolLm2FileName = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// Path of the cached SmolLM2 GGUF, whether or not it exists.
std::string smollm2_gguf_path();

/// smollm2_gguf_path() when the file exists; otherwise throws lab::Error saying how to get it
/// (scripts/fetch_model.sh).
std::string require_smollm2_gguf();

}  // namespace lab
