#pragma once
/// \file
/// \brief Finding the GPU: what is there, and a clear error when nothing is.
///
/// Plain C++ (no CUDA types) so that .cpp chapters and tests can include it.

#include <cstddef>
#include <optional>
#include <string>

namespace lab::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int compute_major = 0, compute_minor = 0;
  std::size_t total_memory = 0;  ///< bytes of device memory
  std::size_t free_memory = 0;   ///< bytes free when queried
  int multiprocessors = 0;
  double memory_clock_khz = 0;  ///< 0 when the runtime does not report it
  int memory_bus_bits = 0;
};

/// The current device, or nothing when there is no usable GPU (no driver, no device, or the
/// runtime refuses). Never throws.
std::optional<DeviceInfo> query_device();

/// The current device; throws lab::NoDeviceError ("no CUDA GPU found: <reason>") otherwise.
DeviceInfo require_device();

/// Throws lab::Error when fewer than `bytes` are free on the device ("needs X GiB, Y GiB free").
void require_device_memory(std::size_t bytes, const std::string& what);

/// One line: "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB)".
std::string describe(const DeviceInfo& info);

}  // namespace lab::cuda
