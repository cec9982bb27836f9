#include <cstdio>

#include "cuda/check.cuh"
#include "cuda/device.hpp"

namespace lab::cuda {

void throw_cuda_error(cudaError_t status, const char* expression, const char* file, int line) {
  const std::string where = std::string(file) + ":" + std::to_string(line);
  if (status == cudaErrorMemoryAllocation)
    throw Error("out of GPU memory (" + std::string(expression) + " at " + where + ")");
  throw Error(std::string("CUDA error ") + cudaGetErrorName(status) + ": " +
              cudaGetErrorString(status) + " (" + expression + " at " + where + ")");
}

void throw_cublas_error(cublasStatus_t status, const char* expression, const char* file, int line) {
  throw Error(std::string("cuBLAS error ") + cublasGetStatusName(status) + ": " +
              cublasGetStatusString(status) + " (" + expression + " at " + file + ":" +
              std::to_string(line) + ")");
}

namespace {
std::string last_reason;
}

std::optional<DeviceInfo> query_device() {
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    last_reason = cudaGetErrorString(status);
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return std::nullopt;
  }
  if (count == 0) {
    last_reason = "the driver reports no devices";
    return std::nullopt;
  }
  int index = 0;
  cudaDeviceProp prop{};
  if (cudaGetDevice(&index) != cudaSuccess ||
      cudaGetDeviceProperties(&prop, index) != cudaSuccess) {
    last_reason = "cannot read the device properties";
    cudaGetLastError();
    return std::nullopt;
  }
  DeviceInfo info;
  info.index = index;
  info.name = prop.name;
  info.compute_major = prop.major;
  info.compute_minor = prop.minor;
  info.total_memory = prop.totalGlobalMem;
  info.multiprocessors = prop.multiProcessorCount;
  info.memory_bus_bits = prop.memoryBusWidth;
  int clock_khz = 0;
  if (cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, index) == cudaSuccess)
    info.memory_clock_khz = clock_khz;
  std::size_t free_bytes = 0, total_bytes = 0;
  if (cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess) info.free_memory = free_bytes;
  cudaGetLastError();
  return info;
}

DeviceInfo require_device() {
  if (auto info = query_device()) return *info;
  throw NoDeviceError("no CUDA GPU found (" + last_reason + "); this chapter needs one");
}

void require_device_memory(std::size_t bytes, const std::string& what) {
  std::size_t free_bytes = 0, total_bytes = 0;
  LAB_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  if (bytes > free_bytes) {
    char buffer[256];
    std::snprintf(buffer, sizeof buffer,
                  "%s needs %.2f GiB of GPU memory, only %.2f GiB of %.2f GiB are free",
                  what.c_str(), static_cast<double>(bytes) / (1 << 30),
                  static_cast<double>(free_bytes) / (1 << 30),
                  static_cast<double>(total_bytes) / (1 << 30));
    throw Error(buffer);
  }
}

std::string describe(const DeviceInfo& d) {
  char buffer[256];
  std::snprintf(buffer, sizeof buffer, "%s (sm_%d%d, %d SMs, %.1f GiB)", d.name.c_str(),
                d.compute_major, d.compute_minor, d.multiprocessors,
                static_cast<double>(d.total_memory) / (1 << 30));
  return buffer;
}

}  // namespace lab::cuda
