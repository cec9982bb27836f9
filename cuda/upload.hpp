#pragma once
/// \file
/// \brief Host weights (fp32) to the device in a decoder's storage type.

#include <span>
#include <type_traits>

#include "cuda/buffer.hpp"
#include "cuda/check.cuh"
#include "cuda/kernels.hpp"

namespace lab::cuda {

/// fp32 host data → a device array of T. For bf16 the data goes up in fp32 and is rounded on the
/// device (to_bf16, round to nearest even), the same rounding the CPU reference applies.
template <typename T>
DeviceBuffer<T> upload_as(std::span<const float> host, cudaStream_t stream) {
  if constexpr (std::is_same_v<T, float>) {
    return DeviceBuffer<float>(host);
  } else {
    DeviceBuffer<float> staging(host);
    DeviceBuffer<T> out(host.size());
    to_bf16(staging.get(), out.get(), static_cast<std::int64_t>(host.size()), stream);
    LAB_CUDA_CHECK(cudaStreamSynchronize(stream));  // staging dies at the end of this scope
    return out;
  }
}

}  // namespace lab::cuda
