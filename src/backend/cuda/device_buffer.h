// RAII device memory: a typed, move-only owner of one allocation, plain cudaMalloc memory (never managed memory)
// or, as PooledBuffer, memory of the stream-ordered pool (device_memory.h). Copies to and from the host are
// synchronous and checked.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <span>
#include <utility>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_memory.h"

namespace ug::cuda {

template <typename T, typename Memory = PlainMemory>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t count) : data_(static_cast<T*>(Memory::alloc(count * sizeof(T)))), count_(count) {}
  explicit DeviceBuffer(std::span<const T> host) : DeviceBuffer(host.size()) { upload(host); }
  ~DeviceBuffer() { reset(); }

  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), count_(std::exchange(o.count_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      data_ = std::exchange(o.data_, nullptr);
      count_ = std::exchange(o.count_, 0);
    }
    return *this;
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return count_; }
  size_t bytes() const { return count_ * sizeof(T); }

  void upload(std::span<const T> host) {
    UG_CUDA_REQUIRE(host.size() == count_, "DeviceBuffer::upload",
                    "host span has " + std::to_string(host.size()) + " elements, buffer " + std::to_string(count_));
    if (count_ > 0) UG_CUDA_CHECK(cudaMemcpy(data_, host.data(), bytes(), cudaMemcpyHostToDevice));
  }
  void download(std::span<T> host) const {
    UG_CUDA_REQUIRE(host.size() == count_, "DeviceBuffer::download",
                    "host span has " + std::to_string(host.size()) + " elements, buffer " + std::to_string(count_));
    if (count_ > 0) UG_CUDA_CHECK(cudaMemcpy(host.data(), data_, bytes(), cudaMemcpyDeviceToHost));
  }
  std::vector<T> to_host() const {
    std::vector<T> v(count_);
    download(v);
    return v;
  }

 private:
  void reset() noexcept {
    Memory::free(data_);
    data_ = nullptr;
    count_ = 0;
  }

  T* data_ = nullptr;
  size_t count_ = 0;
};

// For memory that comes and goes while the model runs (KV caches).
template <typename T>
using PooledBuffer = DeviceBuffer<T, PoolMemory>;

}  // namespace ug::cuda
