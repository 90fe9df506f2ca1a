#include "backend/cuda/device_memory.h"

#include <cuda_runtime_api.h>

#include <cstdint>
#include <mutex>
#include <set>
#include <string>

#include "backend/cuda/cuda_check.h"

namespace ug::cuda {
namespace {

cudaMemPool_t current_pool() {
  int device = 0;
  UG_CUDA_CHECK(cudaGetDevice(&device));
  cudaMemPool_t pool = nullptr;
  UG_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device));
  return pool;
}

// Once per pool: it keeps what is freed (its release threshold is unlimited), so that the memory of an ended
// sequence serves the next one instead of going back to the driver at every synchronization.
void keep_freed_memory(cudaMemPool_t pool) {
  static std::mutex mu;
  static std::set<cudaMemPool_t> kept;
  std::lock_guard lk(mu);
  if (!kept.insert(pool).second) return;
  uint64_t keep = UINT64_MAX;
  UG_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
}

// Runs allocate(); when the device is out of memory, gives the pool's unused memory back and tries once more.
template <typename Allocate>
void* allocate_or_release(const char* what, size_t bytes, Allocate allocate) {
  void* p = nullptr;
  cudaError_t status = allocate(&p);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // the failed call's error, which would otherwise be reported by a later check
    release_pool_memory();
    status = allocate(&p);
  }
  if (status != cudaSuccess) {
    const std::string call = std::string(what) + " of " + std::to_string(bytes) + " bytes";
    throw_cuda_error(status, call.c_str(), __FILE__, __LINE__);
  }
  return p;
}

}  // namespace

void* device_alloc(size_t bytes) {
  if (bytes == 0) return nullptr;
  return allocate_or_release("cudaMalloc", bytes, [&](void** p) { return cudaMalloc(p, bytes); });
}

void device_free(void* p) noexcept {
  if (p) cudaFree(p);
}

void* pool_alloc(size_t bytes) {
  if (bytes == 0) return nullptr;
  keep_freed_memory(current_pool());
  return allocate_or_release("cudaMallocAsync", bytes,
                             [&](void** p) { return cudaMallocAsync(p, bytes, cudaStreamLegacy); });
}

void pool_free(void* p) noexcept {
  if (p) cudaFreeAsync(p, cudaStreamLegacy);
}

void pool_copy(void* dst, const void* src, size_t bytes) {
  if (bytes > 0) UG_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cudaStreamLegacy));
}

void release_pool_memory() {
  UG_CUDA_CHECK(cudaDeviceSynchronize());  // queued frees count as in use until the device reaches them
  UG_CUDA_CHECK(cudaMemPoolTrimTo(current_pool(), 0));
}

}  // namespace ug::cuda
