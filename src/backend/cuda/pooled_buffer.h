// Device memory from the device's stream-ordered pool (cudaMallocAsync / cudaFreeAsync on the legacy default
// stream, with which every blocking stream is ordered): taking and giving back a buffer costs microseconds and
// never waits for the device, where cudaMalloc / cudaFree cost tens of µs each (cudaFree also waits for all queued
// work). Freed memory stays in the pool for the next buffer, so a server that ends and starts sequences reuses
// their KV memory instead of returning it to the driver. For memory that comes and goes while the model runs (KV
// caches); long-lived buffers use DeviceBuffer.
#pragma once

#include <cstddef>
#include <utility>

namespace ug::cuda {

// A pool allocation of `bytes` on the current device (nullptr for 0 bytes); ug::Error when out of memory.
void* pool_alloc(size_t bytes);
// Gives it back, ordered after the work queued on the legacy stream and the blocking streams (no host wait).
void pool_free(void* p) noexcept;
// Copies device bytes in stream order (after the kernels that wrote src; before the later ones that read dst):
// the host does not wait.
void pool_copy(void* dst, const void* src, size_t bytes);

template <typename T>
class PooledBuffer {
 public:
  PooledBuffer() = default;
  explicit PooledBuffer(size_t count) : data_(static_cast<T*>(pool_alloc(count * sizeof(T)))), count_(count) {}
  ~PooledBuffer() { pool_free(data_); }
  PooledBuffer(const PooledBuffer&) = delete;
  PooledBuffer& operator=(const PooledBuffer&) = delete;
  PooledBuffer(PooledBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), count_(std::exchange(o.count_, 0)) {}
  PooledBuffer& operator=(PooledBuffer&& o) noexcept {
    if (this != &o) {
      pool_free(data_);
      data_ = std::exchange(o.data_, nullptr);
      count_ = std::exchange(o.count_, 0);
    }
    return *this;
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return count_; }
  size_t bytes() const { return count_ * sizeof(T); }

 private:
  T* data_ = nullptr;
  size_t count_ = 0;
};

}  // namespace ug::cuda
