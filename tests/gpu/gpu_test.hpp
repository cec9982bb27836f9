#pragma once
/// \file
/// \brief Shared by every GPU test: skip cleanly (GTEST_SKIP) when the machine has no GPU.

#include <gtest/gtest.h>

#include <cstdlib>
#include <string_view>

#include "cuda/device.hpp"

/// Put first in every GPU test body.
#define LAB_REQUIRE_GPU()                                                            \
  do {                                                                               \
    if (!::lab::cuda::query_device()) GTEST_SKIP() << "no CUDA GPU on this machine"; \
  } while (0)

/// True under scripts/gpu_sanitize.sh, which sets LAB_TEST_SCALE=small: the longest GPU tests then
/// run fewer prompts and steps. The same code paths and checks, a fraction of the kernel launches:
/// under compute-sanitizer every launch costs milliseconds, and the full runs outlasted a device
/// call.
inline bool small_test_scale() {
  const char* scale = std::getenv("LAB_TEST_SCALE");
  return scale != nullptr && std::string_view(scale) == "small";
}
