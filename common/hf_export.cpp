#include "common/hf_export.hpp"

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/bpe_tokenizer.hpp"
#include "common/error.hpp"
#include "common/hf_config.hpp"
#include "common/safetensors.hpp"

namespace lab {

namespace fs = std::filesystem;

namespace {

void write_json_file(const fs::path& path, const nlohmann::json& j) {
  std::ofstream out(path);
  out << j.dump(2) << '\n';
  if (!out) throw Error("cannot write '" + path.string() + "'");
}

nlohmann::json read_json_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot read '" + path.string() + "'");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error("'" + path.string() + "' is not valid JSON: " + e.what());
  }
}

}  // namespace

//! [export]
void export_hf_directory(const LoadedModel& model, const std::string& dir, DType dtype) {
  const ModelWeights& w = model.weights;
  validate(w);
  fs::create_directories(dir);
  const fs::path root(dir);
  write_json_file(root / "config.json", hf_config_json(w.config));

  // Weights in the fixed order of expected_tensors(); a tied model stores no lm_head.
  std::vector<std::pair<std::string, const Tensor*>> tensors;
  for (const auto& [name, shape] : expected_tensors(w.config))
    tensors.emplace_back(name, &w.at(name));
  write_safetensors((root / "model.safetensors").string(), tensors, dtype);

  nlohmann::json generation = {{"_from_model_config", true}, {"do_sample", false}};
  if (w.config.bos_token_id >= 0) generation["bos_token_id"] = w.config.bos_token_id;
  if (w.config.eos_token_id >= 0) generation["eos_token_id"] = w.config.eos_token_id;
  write_json_file(root / "generation_config.json", generation);

  if (!model.tokenizer) return;
  std::shared_ptr<const BpeTokenizer> bpe =
      std::dynamic_pointer_cast<const BpeTokenizer>(model.tokenizer);
  if (!bpe && dynamic_cast<const ByteTokenizer*>(model.tokenizer.get()))
    bpe = std::make_shared<BpeTokenizer>(byte_tokenizer_vocabulary());
  if (!bpe) return;  // some other tokenizer: nothing HF could load
  write_json_file(root / "tokenizer.json", bpe->to_tokenizer_json());

  const auto& tokens = bpe->vocabulary().tokens;
  nlohmann::json config = {{"tokenizer_class", "PreTrainedTokenizerFast"},
                           {"clean_up_tokenization_spaces", false},
                           {"add_prefix_space", false},
                           {"add_bos_token", bpe->add_bos()},
                           {"model_max_length", w.config.max_seq_len}};
  if (bpe->bos_id() >= 0) config["bos_token"] = tokens[bpe->bos_id()];
  if (bpe->eos_id() >= 0) {
    config["eos_token"] = tokens[bpe->eos_id()];
    config["pad_token"] = tokens[bpe->eos_id()];
  }
  if (!bpe->vocabulary().chat_template.empty())
    config["chat_template"] = bpe->vocabulary().chat_template;
  write_json_file(root / "tokenizer_config.json", config);
}
//! [export]

LoadedModel load_hf_directory(const std::string& dir) {
  const fs::path root(dir);
  if (!fs::is_directory(root)) throw Error("'" + dir + "' is not a directory");
  if (!fs::exists(root / "config.json"))
    throw Error("'" + dir + "' has no config.json (not a Hugging Face model directory)");
  LoadedModel m;
  ModelConfig config;
  try {
    config = config_from_hf_json(read_json_file(root / "config.json"));
  } catch (const Error& e) {
    throw Error("'" + dir + "': " + e.what());
  }
  config.name =
      root.filename().empty() ? root.parent_path().filename().string() : root.filename().string();

  // Which file holds each tensor: one model.safetensors, or the shards of the index.
  std::map<std::string, std::string> file_of;
  std::set<std::string> files;
  if (fs::exists(root / "model.safetensors.index.json")) {
    const auto index = read_json_file(root / "model.safetensors.index.json");
    if (!index.contains("weight_map") || !index["weight_map"].is_object())
      throw Error("'" + dir + "/model.safetensors.index.json' has no weight_map object");
    for (const auto& [name, file] : index["weight_map"].items()) {
      if (!file.is_string()) throw Error("model.safetensors.index.json: bad entry '" + name + "'");
      const auto f = file.get<std::string>();
      if (f.empty() || f.find('/') != std::string::npos || f.find("..") != std::string::npos)
        throw Error("model.safetensors.index.json: shard name '" + f +
                    "' is not a plain file name");
      file_of[name] = f;
      files.insert(f);
    }
  } else if (fs::exists(root / "model.safetensors")) {
    files.insert("model.safetensors");
  } else {
    throw Error("'" + dir + "' has neither model.safetensors nor model.safetensors.index.json");
  }

  const auto expected = expected_tensors(config);
  std::map<std::string, std::vector<std::int64_t>> expected_shape(expected.begin(), expected.end());
  m.weights.config = config;
  for (const auto& file : files) {
    const SafetensorsFile st((root / file).string());
    for (const auto& t : st.tensors()) {
      if (!file_of.empty() && file_of.count(t.name) && file_of[t.name] != file) continue;
      if (t.name.ends_with("rotary_emb.inv_freq")) continue;  // a buffer older exports kept
      if (t.name == "lm_head.weight" && config.tie_word_embeddings) continue;  // tied: a copy
      auto it = expected_shape.find(t.name);
      if (it == expected_shape.end())
        throw Error("safetensors '" + st.name() + "': unexpected tensor '" + t.name + "'");
      if (t.shape != it->second)
        throw Error("safetensors '" + st.name() + "': tensor '" + t.name +
                    "' does not have the shape config.json implies");
      if (m.weights.tensors.count(t.name))
        throw Error("'" + dir + "': tensor '" + t.name + "' appears in two files");
      m.weights.tensors.emplace(t.name, st.to_tensor(t));
    }
  }
  for (const auto& [name, shape] : expected)
    if (!m.weights.tensors.count(name)) throw Error("'" + dir + "': missing tensor '" + name + "'");
  validate(m.weights);

  if (fs::exists(root / "tokenizer.json")) {
    std::string chat_template;
    if (fs::exists(root / "tokenizer_config.json")) {
      const auto tc = read_json_file(root / "tokenizer_config.json");
      if (tc.contains("chat_template") && tc["chat_template"].is_string())
        chat_template = tc["chat_template"].get<std::string>();
    }
    try {
      auto tokenizer = BpeTokenizer::from_tokenizer_json(read_json_file(root / "tokenizer.json"),
                                                         config.bos_token_id, config.eos_token_id,
                                                         chat_template);
      if (tokenizer->vocab_size() > config.vocab_size)
        throw Error("the tokenizer has " + std::to_string(tokenizer->vocab_size()) +
                    " tokens, more than the model's " + std::to_string(config.vocab_size));
      m.tokenizer = tokenizer;
    } catch (const Error& e) {
      throw Error("'" + dir + "': " + e.what());
    }
  } else if (config.vocab_size == ByteTokenizer().vocab_size()) {
    m.tokenizer = std::make_shared<ByteTokenizer>();
  }
  m.source = dir + " (Hugging Face directory, " + std::to_string(files.size()) +
             " safetensors file" + (files.size() == 1 ? "" : "s") + ")";
  return m;
}

}  // namespace lab
