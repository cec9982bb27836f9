// Fuzz target: config.json parsing (JSON syntax, then LlamaForCausalLM's keys and their checks).
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/hf_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto json = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return 0;
  try {
    const auto config = lab::config_from_hf_json(json);
    (void)lab::hf_config_json(config);
  } catch (const lab::Error&) {
  }
  return 0;
}
