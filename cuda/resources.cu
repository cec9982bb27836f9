#include "cuda/check.cuh"
#include "cuda/resources.hpp"

#include <nvtx3/nvToolsExtMemCudaRt.h>

#include <cstdlib>
#include <cstring>

namespace lab::cuda {

Stream::Stream() {
  LAB_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
}
Stream::~Stream() {
  if (stream_) cudaStreamDestroy(stream_);
}
void Stream::synchronize() const {
  LAB_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

Event::Event() {
  LAB_CUDA_CHECK(cudaEventCreate(&event_));
}
Event::~Event() {
  if (event_) cudaEventDestroy(event_);
}
void Event::record(cudaStream_t stream) {
  LAB_CUDA_CHECK(cudaEventRecord(event_, stream));
}
float Event::elapsed_ms_since(const Event& start) const {
  LAB_CUDA_CHECK(cudaEventSynchronize(event_));
  float ms = 0;
  LAB_CUDA_CHECK(cudaEventElapsedTime(&ms, start.event_, event_));
  return ms;
}

CublasHandle::CublasHandle(cudaStream_t stream) {
  LAB_CUBLAS_CHECK(cublasCreate(&handle_));
  LAB_CUBLAS_CHECK(cublasSetStream(handle_, stream));
}
CublasHandle::~CublasHandle() {
  if (handle_) cublasDestroy(handle_);
}

CudaGraph::~CudaGraph() {
  reset();
}
void CudaGraph::reset() {
  if (exec_) cudaGraphExecDestroy(exec_);
  if (graph_) cudaGraphDestroy(graph_);
  exec_ = nullptr;
  graph_ = nullptr;
}
void CudaGraph::capture(cudaStream_t stream, const std::function<void()>& body) {
  reset();
  // Thread-local mode: other threads may keep using CUDA while this one captures.
  LAB_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  try {
    body();
  } catch (...) {
    cudaGraph_t broken = nullptr;
    cudaStreamEndCapture(stream, &broken);
    if (broken) cudaGraphDestroy(broken);
    throw;
  }
  LAB_CUDA_CHECK(cudaStreamEndCapture(stream, &graph_));
  LAB_CUDA_CHECK(cudaGraphInstantiate(&exec_, graph_, 0));
}
void CudaGraph::launch(cudaStream_t stream) const {
  require(exec_ != nullptr, "CudaGraph::launch before capture");
  LAB_CUDA_CHECK(cudaGraphLaunch(exec_, stream));
}

TimingStats time_on_device(cudaStream_t stream, const std::function<void()>& body, int warmup,
                           int repeats) {
  for (int i = 0; i < warmup; ++i) body();
  std::vector<Event> starts(static_cast<std::size_t>(repeats)),
      stops(static_cast<std::size_t>(repeats));
  for (int i = 0; i < repeats; ++i) {
    starts[static_cast<std::size_t>(i)].record(stream);
    body();
    stops[static_cast<std::size_t>(i)].record(stream);
  }
  LAB_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<double> seconds;
  for (int i = 0; i < repeats; ++i)
    seconds.push_back(1e-3 * stops[static_cast<std::size_t>(i)].elapsed_ms_since(
                                 starts[static_cast<std::size_t>(i)]));
  return summarize(std::move(seconds));
}

void mark_initialized(const void* d_ptr, std::size_t bytes, cudaStream_t stream) {
  static const bool enabled = [] {
    const char* flag = std::getenv("LAB_NVTX_MARKS");
    return flag == nullptr || std::strcmp(flag, "0") != 0;
  }();
  if (!enabled || bytes == 0) return;
  static const nvtxDomainHandle_t domain = nvtxDomainCreateA("inference-lab");
  nvtxMemVirtualRangeDesc_t range{bytes, d_ptr};
  nvtxMemMarkInitializedBatch_t batch{};
  batch.extCompatID = NVTX_EXT_COMPATID_MEM;
  batch.structSize = sizeof(batch);
  batch.regionType = NVTX_MEM_TYPE_VIRTUAL_ADDRESS;
  batch.regionDescCount = 1;
  batch.regionDescElementSize = sizeof(range);
  batch.regionDescElements = &range;
  nvtxMemCudaMarkInitialized(domain, stream, 0, &batch);
}

}  // namespace lab::cuda
