#pragma once
/// \file
/// \brief Hugging Face model directories: export any loaded model, load one back.
///
/// A directory holds config.json (LlamaForCausalLM), model.safetensors (or shards listed in
/// model.safetensors.index.json), and for real models tokenizer.json, tokenizer_config.json and
/// generation_config.json, so that `transformers` and `tokenizers` load it offline as it is.

#include <string>

#include "common/dtype.hpp"
#include "common/model_source.hpp"

namespace lab {

/// Writes `model` to directory `dir` (created if needed): config.json, model.safetensors in
/// `dtype` (fp32 by default; no lm_head when tied), generation_config.json and, when the model
/// has a tokenizer, tokenizer.json + tokenizer_config.json. The tiny preset's byte tokenizer is
/// exported as an equivalent byte-level BPE without merges.
void export_hf_directory(const LoadedModel& model, const std::string& dir,
                         DType dtype = DType::FP32);

/// Reads a directory written by export_hf_directory() or downloaded from the Hugging Face hub
/// (LlamaForCausalLM, F32/F16/BF16 safetensors, single file or sharded).
LoadedModel load_hf_directory(const std::string& dir);

}  // namespace lab
