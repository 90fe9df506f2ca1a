// A typed, move-only owner of device memory from the stream-ordered pool (device_memory.h): for buffers that come
// and go while the model runs, such as KV caches.
#pragma once

#include <cstddef>
#include <utility>

#include "backend/cuda/device_memory.h"

namespace ug::cuda {

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
