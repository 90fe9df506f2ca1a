#include "model_cuda/device_kv_storage.h"

#include <algorithm>

#include "backend/cuda/cuda_check.h"

namespace ug::cuda {

DeviceKvStorage::DeviceKvStorage(const TextConfig& config, int64_t ring_slack, int device, KvType type)
    : device_(device), type_(type) {
  for (const auto& l : config.layers) {
    Layer d;
    d.row_size = (l.n_kv_heads * l.head_dim * kv_type_bytes(type) + 1) / 2;  // in uint16_t units
    d.ring_capacity = l.kind == LayerKind::Sliding ? config.sliding_window + ring_slack : 0;
    layers_.push_back(std::move(d));
  }
}

std::unique_ptr<KvStorage> DeviceKvStorage::clone() const {
  UG_CUDA_CHECK(cudaSetDevice(device_));
  std::unique_ptr<DeviceKvStorage> c(new DeviceKvStorage());
  c->device_ = device_;
  c->type_ = type_;
  for (const Layer& l : layers_) {
    Layer d{.row_size = l.row_size, .ring_capacity = l.ring_capacity, .rows = l.rows};
    d.k = PooledBuffer<uint16_t>(l.k.size());
    d.v = PooledBuffer<uint16_t>(l.v.size());
    pool_copy(d.k.data(), l.k.data(), l.k.bytes());
    pool_copy(d.v.data(), l.v.data(), l.v.bytes());
    c->layers_.push_back(std::move(d));
  }
  return c;
}

size_t DeviceKvStorage::bytes() const {
  size_t b = 0;
  for (const Layer& l : layers_) b += l.k.bytes() + l.v.bytes();
  return b;
}

void DeviceKvStorage::resize(Layer& l, int64_t rows) const {
  PooledBuffer<uint16_t> k(size_t(rows * l.row_size)), v(size_t(rows * l.row_size));
  // In stream order: after the kernels that wrote the old rows, before the old buffers go back to the pool.
  pool_copy(k.data(), l.k.data(), l.k.bytes());
  pool_copy(v.data(), l.v.data(), l.v.bytes());
  l.k = std::move(k);
  l.v = std::move(v);
  l.rows = rows;
}

void DeviceKvStorage::reserve(int64_t n_tokens) {
  UG_CUDA_CHECK(cudaSetDevice(device_));
  for (Layer& l : layers_) {
    const int64_t want = l.ring_capacity > 0 ? std::min(n_tokens, l.ring_capacity) : n_tokens;
    if (want > l.rows) resize(l, want);
  }
}

void DeviceKvStorage::grow(int64_t n_tokens) {
  UG_CUDA_CHECK(cudaSetDevice(device_));
  for (Layer& l : layers_) {
    int64_t want = l.ring_capacity > 0 ? std::min(n_tokens, l.ring_capacity) : n_tokens;
    if (want <= l.rows) continue;
    if (l.ring_capacity == 0) want = std::max(want, l.rows * 3 / 2);  // amortised growth of full layers
    if (l.ring_capacity > 0) want = std::min(std::max(want, l.rows * 3 / 2), l.ring_capacity);
    resize(l, want);
  }
}

}  // namespace ug::cuda
