#pragma once
/// \file
/// \brief Shared by every GPU test: skip cleanly (GTEST_SKIP) when the machine has no GPU.

#include <gtest/gtest.h>

#include "cuda/device.hpp"

/// Put first in every GPU test body.
#define LAB_REQUIRE_GPU()                                                            \
  do {                                                                               \
    if (!::lab::cuda::query_device()) GTEST_SKIP() << "no CUDA GPU on this machine"; \
  } while (0)
