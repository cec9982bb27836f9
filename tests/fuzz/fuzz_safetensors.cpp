// Fuzz target: the safetensors reader and its fp32 conversion.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/error.hpp"
#include "common/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto file =
        lab::SafetensorsFile::from_bytes(std::vector<std::uint8_t>(data, data + size));
    for (const auto& t : file.tensors()) (void)file.to_tensor(t);
  } catch (const lab::Error&) {
  }
  return 0;
}
