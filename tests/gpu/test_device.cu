// Device discovery: the one GPU test that exists before any kernel. On a machine without a GPU it
// checks that the failure is the clear, typed one the chapters rely on.
#include <gtest/gtest.h>

#include "common/error.hpp"
#include "cuda/device.hpp"
#include "gpu_test.hpp"

TEST(Device, NoGpuGivesTypedError) {
  if (lab::cuda::query_device()) GTEST_SKIP() << "a GPU is present";
  EXPECT_THROW(lab::cuda::require_device(), lab::NoDeviceError);
}

TEST(Device, ReportsAPlausibleGpu) {
  LAB_REQUIRE_GPU();
  const auto info = lab::cuda::require_device();
  EXPECT_FALSE(info.name.empty());
  EXPECT_GE(info.compute_major, 7);
  EXPECT_GT(info.total_memory, std::size_t{1} << 30);
  EXPECT_GT(info.multiprocessors, 0);
}

TEST(Device, TooLargeAllocationIsRefusedClearly) {
  LAB_REQUIRE_GPU();
  const auto info = lab::cuda::require_device();
  EXPECT_THROW(lab::cuda::require_device_memory(info.total_memory * 2, "test"), lab::Error);
}
