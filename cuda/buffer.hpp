#pragma once
/// \file
/// \brief RAII for device memory: a DeviceBuffer<T> owns one cudaMalloc'd array and frees it.
///
/// Plain C++ (cuda_runtime.h only), so that .cpp chapters and tests can hold device arrays.

#include <cuda_runtime.h>

#include <cstddef>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "cuda/check.cuh"

namespace lab::cuda {

/// `count` elements of T in device memory. Move-only; the destructor frees. Copies to and from
/// the host are checked and synchronous unless a stream is given.
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t count) : count_(count) {
    if (count_ > 0) LAB_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&data_), bytes()));
  }
  /// Allocates and uploads `host`.
  explicit DeviceBuffer(std::span<const T> host) : DeviceBuffer(host.size()) { upload(host); }
  ~DeviceBuffer() {
    if (data_) cudaFree(data_);  // never throw from a destructor; a failed free leaks, no more
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), count_(std::exchange(other.count_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      if (data_) cudaFree(data_);
      data_ = std::exchange(other.data_, nullptr);
      count_ = std::exchange(other.count_, 0);
    }
    return *this;
  }

  T* get() { return data_; }
  const T* get() const { return data_; }
  std::size_t size() const { return count_; }
  std::size_t bytes() const { return count_ * sizeof(T); }

  /// Host → device, `host.size()` must not exceed size().
  void upload(std::span<const T> host) {
    require(host.size() <= count_, "DeviceBuffer::upload: " + std::to_string(host.size()) +
                                       " elements into a buffer of " + std::to_string(count_));
    if (host.empty()) return;
    LAB_CUDA_CHECK(cudaMemcpy(data_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
    // From pageable memory cudaMemcpy returns once the data is staged, possibly before the DMA
    // has landed, and it runs on the legacy default stream, which the course's non-blocking
    // streams do not wait for: a kernel launched next on such a stream could read the old bytes
    // (it did: bf16 weight conversion read half-uploaded matrices). Wait for the copy itself.
    LAB_CUDA_CHECK(cudaStreamSynchronize(cudaStreamLegacy));
  }
  /// Device → host: the first `count` elements (all when count is npos).
  std::vector<T> download(std::size_t count = static_cast<std::size_t>(-1)) const {
    if (count == static_cast<std::size_t>(-1)) count = count_;
    require(count <= count_, "DeviceBuffer::download: more elements than the buffer holds");
    std::vector<T> host(count);
    if (count > 0)
      LAB_CUDA_CHECK(cudaMemcpy(host.data(), data_, count * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }
  /// Sets every byte to `byte` (0xFF for float is a NaN: the "poison" tests use to catch elements
  /// a kernel forgot to write).
  void fill_bytes(int byte) {
    if (count_ == 0) return;
    LAB_CUDA_CHECK(cudaMemset(data_, byte, bytes()));
    LAB_CUDA_CHECK(cudaStreamSynchronize(cudaStreamLegacy));  // cudaMemset is asynchronous too
  }

 private:
  T* data_ = nullptr;
  std::size_t count_ = 0;
};

}  // namespace lab::cuda
