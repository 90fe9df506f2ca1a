// Device memory of the CUDA backend, two kinds:
// - plain cudaMalloc memory for long-lived buffers (weights, step scratch: DeviceBuffer);
// - the device's stream-ordered pool (cudaMallocAsync / cudaFreeAsync on the legacy default stream, with which
//   every blocking stream is ordered) for memory that comes and goes while the model runs (KV caches:
//   PooledBuffer, device_buffer.h). Taking and giving back pool memory costs microseconds and never waits for the
//   device, where cudaMalloc / cudaFree cost tens of µs each and cudaFree also waits for all queued work. Freed pool
//   memory stays in the pool for the next buffer (a server that ends and starts sequences reuses their KV memory); when
//   either kind runs out, the pool's unused memory goes back to the driver and the allocation is tried once more.
#pragma once

#include <cstddef>

namespace ug::cuda {

// cudaMalloc of `bytes` on the current device (nullptr for 0); ug::Error when out of memory.
void* device_alloc(size_t bytes);
// cudaFree (nothing for nullptr); never throws (destructors): a failing free means the context is gone.
void device_free(void* p) noexcept;
// A pool allocation of `bytes` on the current device (nullptr for 0); ug::Error when out of memory.
void* pool_alloc(size_t bytes);
// Gives it back, ordered after the work queued on the legacy stream and the blocking streams (no host wait);
// never throws (destructors).
void pool_free(void* p) noexcept;
// Copies device bytes in stream order (after the kernels that wrote src, before the later ones that read dst):
// the host does not wait.
void pool_copy(void* dst, const void* src, size_t bytes);
// Waits for the device, then returns the pool's unused memory to the driver (the current device).
void release_pool_memory();

// Where a DeviceBuffer's memory comes from.
struct PlainMemory {
  static void* alloc(size_t bytes) { return device_alloc(bytes); }
  static void free(void* p) noexcept { device_free(p); }
};
struct PoolMemory {
  static void* alloc(size_t bytes) { return pool_alloc(bytes); }
  static void free(void* p) noexcept { pool_free(p); }
};

}  // namespace ug::cuda
