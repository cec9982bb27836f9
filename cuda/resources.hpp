#pragma once
/// \file
/// \brief RAII owners of the other CUDA resources: streams, events, cuBLAS handles, CUDA graphs,
/// and an event timer that measures device time the way Appendix B prescribes.

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <functional>
#include <string>
#include <vector>

#include "common/timing.hpp"

namespace lab::cuda {

/// A non-blocking stream (does not synchronise with the legacy default stream).
class Stream {
 public:
  Stream();
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }
  /// Waits for everything queued on the stream; throws on an asynchronous error.
  void synchronize() const;

 private:
  cudaStream_t stream_ = nullptr;
};

/// A CUDA event (for timing and ordering).
class Event {
 public:
  Event();
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return event_; }
  void record(cudaStream_t stream);
  /// Milliseconds between `start` and this event (both recorded and completed).
  float elapsed_ms_since(const Event& start) const;

 private:
  cudaEvent_t event_ = nullptr;
};

/// A cuBLAS handle bound to a stream.
class CublasHandle {
 public:
  explicit CublasHandle(cudaStream_t stream);
  ~CublasHandle();
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  cublasHandle_t get() const { return handle_; }

 private:
  cublasHandle_t handle_ = nullptr;
};

/// A captured and instantiated CUDA graph: every launch `body` makes on `stream` is recorded once
/// and replayed with one launch, so the CPU pays one launch cost instead of one per kernel.
class CudaGraph {
 public:
  CudaGraph() = default;
  ~CudaGraph();
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;
  /// Captures `body`'s launches on `stream` (replacing any earlier capture).
  void capture(cudaStream_t stream, const std::function<void()>& body);
  bool ready() const { return exec_ != nullptr; }
  void launch(cudaStream_t stream) const;

 private:
  void reset();
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
};

/// Times `body` (which launches work on `stream`) with CUDA events: `warmup` untimed runs, then
/// `repeats` timed ones, each between its own pair of events. Returns seconds per run.
TimingStats time_on_device(cudaStream_t stream, const std::function<void()>& body, int warmup,
                           int repeats);

/// Tells compute-sanitizer's initcheck (through the NVTX memory API; a no-op when no tool is
/// attached) that `bytes` at `d_ptr` were written by work queued on `stream`. For writes the tool
/// cannot see: on Hopper, initcheck reported every kernel that read a cuBLAS GEMM's output as
/// reading uninitialised memory, though the output is complete (probably because cuBLAS's sm90
/// kernels store through the tensor memory accelerator, TMA; not established).
/// tests/gpu/test_matmul_gemv.cu shows those writes land (`GemmWritesEveryOutput`);
/// scripts/gpu_sanitize.sh reruns that test with the marks off (LAB_NVTX_MARKS=0) as the control
/// that shows the reports appear without them.
void mark_initialized(const void* d_ptr, std::size_t bytes, cudaStream_t stream);

}  // namespace lab::cuda
