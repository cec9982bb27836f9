#pragma once
/// \file
/// \brief Hopper's bulk copy engine (TMA, `cp.async.bulk`): global memory → shared memory without
/// registers, completion counted in bytes on a shared-memory barrier (`mbarrier`).
///
/// A thread-issued load keeps its destination register busy until the data arrives, so the bytes
/// a kernel can have in flight are bounded by its registers (Little's law: bandwidth × latency
/// must be in flight). A bulk copy names a destination in shared memory instead: one thread issues
/// tens of kilobytes with one instruction, the copy engine moves them, and a barrier in shared
/// memory counts the bytes that have landed. Threads that need the data wait on the barrier's
/// phase. The GEMV v7 family (gemv.cu) uses it to have a whole block's weights in flight before
/// the block waits on the previous kernel (PDL, cuda/launch.cuh).
///
/// Protocol (one use per barrier, phase 0):
///   thread 0: bulk_barrier_init(bar); bulk_expect_bytes(bar, total); bulk_copy(...) per chunk;
///   __syncthreads();       // the other threads may now wait on the initialised barrier
///   bulk_wait(bar, 0);     // every thread: the bytes have landed and are visible
/// The sizes and addresses of a copy must be multiples of 16 bytes. sm_90 and later only.

#include <cstdint>

namespace lab::cuda {

__device__ inline std::uint32_t shared_address(const void* p) {
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}

/// Initialises the barrier for one arriving thread and makes it visible to the copy engine.
__device__ inline void bulk_barrier_init(std::uint64_t* bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(shared_address(bar)));
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
#endif
}

/// The one arrival on the barrier, announcing the bytes the copies will deliver: the phase
/// completes when all of them have landed.
__device__ inline void bulk_expect_bytes(std::uint64_t* bar, std::uint32_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(shared_address(bar)),
               "r"(bytes)
               : "memory");
#endif
}

/// Copies `bytes` from global `src` to shared `dst`, counted on `bar`. The global side is marked
/// evict-first in L2: weights are read once a step, and the cache is better left to the
/// activations and the KV cache.
__device__ inline void bulk_copy(void* dst, const void* src, std::uint32_t bytes,
                                 std::uint64_t* bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  std::uint64_t policy;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint"
      " [%0], [%1], %2, [%3], %4;" ::"r"(shared_address(dst)),
      "l"(src), "r"(bytes), "r"(shared_address(bar)), "l"(policy)
      : "memory");
#endif
}

/// Waits until the barrier's phase `parity` has completed (all announced bytes landed).
__device__ inline void bulk_wait(std::uint64_t* bar, std::uint32_t parity) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "{\n\t.reg .pred done;\n"  // labels inside { } are local: the function may be inlined twice
      "bulk_wait_again:\n\t"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n\t"
      "@!done bra bulk_wait_again;\n\t}" ::"r"(shared_address(bar)),
      "r"(parity)
      : "memory");
#endif
}

}  // namespace lab::cuda
