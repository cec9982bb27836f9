#pragma once
/// \file
/// \brief Programmatic dependent launch (PDL, Hopper): the next kernel of a stream may start while
/// the current one drains, and waits for its results only where it needs them.
///
/// Without PDL a kernel starts only after its predecessor has completed and flushed its writes:
/// every boundary costs a ramp-down, a launch and a ramp-up, a few microseconds in which HBM sits
/// partly idle. With the launch attribute `cudaLaunchAttributeProgrammaticStreamSerialization`, the
/// next kernel's blocks may be scheduled as soon as every block of the current kernel has called
/// `allow_next_kernel()` (or exited). They run their independent prologue (a GEMV issues its first
/// weight loads: weights never depend on the previous kernel) and then `wait_for_previous_kernel()`
/// blocks until the predecessor has completed and its writes are visible. Works inside CUDA graphs.
///
/// The contract: a kernel launched with `pdl = true` must call wait_for_previous_kernel() in every
/// block before it reads or writes anything an earlier kernel of the stream touches. Both
/// functions are no-ops in a kernel launched without the attribute.

#include <cuda_runtime.h>

#include "cuda/check.cuh"

namespace lab::cuda {

/// Blocks until the previous kernel of the stream has completed and its writes are visible.
__device__ inline void wait_for_previous_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

/// Lets the next kernel of the stream be scheduled (its own wait still protects its reads).
__device__ inline void allow_next_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;");
#endif
}

/// kernel<<<grid, block, shared, stream>>>(args...), with the PDL attribute when `pdl`.
template <typename... Params, typename... Args>
void launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t shared,
                   cudaStream_t stream, bool pdl, Args... args) {
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = shared;
  config.stream = stream;
  config.attrs = pdl ? &attribute : nullptr;
  config.numAttrs = pdl ? 1 : 0;
  LAB_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, static_cast<Params>(args)...));
}

}  // namespace lab::cuda
