#include "model/kv_cache.h"

#include <algorithm>
#include <cstring>

namespace ug {

KvCache::KvCache(const TextConfig& config) {
  for (const auto& l : config.layers) {
    LayerKvCache c;
    c.row_size = l.n_kv_heads * l.head_dim;
    c.ring_capacity = l.kind == LayerKind::Sliding ? config.sliding_window : 0;
    layers_.push_back(std::move(c));
  }
}

size_t KvCache::bytes() const {
  size_t b = 0;
  for (const auto& l : layers_) b += (l.k.capacity() + l.v.capacity()) * sizeof(float);
  return b;
}

void KvCache::store(int64_t i, int64_t start, int64_t n, const float* k, const float* v) {
  LayerKvCache& c = layers_[size_t(i)];
  const int64_t rs = c.row_size;
  if (c.ring_capacity > 0) {
    size_t need = size_t(std::min(c.ring_capacity, start + n) * rs);
    if (c.k.size() < need) {
      c.k.resize(need);
      c.v.resize(need);
    }
    // Only the last `capacity` rows of the chunk can survive in the ring.
    int64_t first = std::max<int64_t>(0, n - c.ring_capacity);
    for (int64_t t = first; t < n; ++t) {
      int64_t slot = (start + t) % c.ring_capacity;
      std::memcpy(&c.k[size_t(slot * rs)], k + t * rs, size_t(rs) * sizeof(float));
      std::memcpy(&c.v[size_t(slot * rs)], v + t * rs, size_t(rs) * sizeof(float));
    }
    return;
  }
  size_t need = size_t((start + n) * rs);
  if (c.k.size() < need) {
    size_t cap = std::max(need, c.k.size() * 3 / 2);
    c.k.reserve(cap);
    c.v.reserve(cap);
    c.k.resize(need);
    c.v.resize(need);
  }
  std::memcpy(&c.k[size_t(start * rs)], k, size_t(n * rs) * sizeof(float));
  std::memcpy(&c.v[size_t(start * rs)], v, size_t(n * rs) * sizeof(float));
}

}  // namespace ug
