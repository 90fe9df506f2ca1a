#include "backend/cuda/pooled_buffer.h"

#include <cuda_runtime_api.h>

#include <cstdint>
#include <mutex>
#include <set>

#include "backend/cuda/cuda_check.h"

namespace ug::cuda {
namespace {

// Once per device: the default pool keeps what is freed (its release threshold is unlimited), so that the
// memory of an ended sequence serves the next one without going back to the driver at every synchronization.
void keep_freed_memory(int device) {
  static std::mutex mu;
  static std::set<int> done;
  std::lock_guard lk(mu);
  if (!done.insert(device).second) return;
  cudaMemPool_t pool = nullptr;
  UG_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device));
  uint64_t keep = UINT64_MAX;
  UG_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
}

}  // namespace

void* pool_alloc(size_t bytes) {
  if (bytes == 0) return nullptr;
  int device = 0;
  UG_CUDA_CHECK(cudaGetDevice(&device));
  keep_freed_memory(device);
  void* p = nullptr;
  UG_CUDA_CHECK(cudaMallocAsync(&p, bytes, cudaStreamLegacy));
  return p;
}

void pool_free(void* p) noexcept {
  if (p) cudaFreeAsync(p, cudaStreamLegacy);  // must not throw (destructors); a failure means the context is gone
}

void pool_copy(void* dst, const void* src, size_t bytes) {
  if (bytes > 0) UG_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cudaStreamLegacy));
}

}  // namespace ug::cuda
