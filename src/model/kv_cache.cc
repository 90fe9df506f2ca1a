#include "model/kv_cache.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace ug {

KvCache::KvCache(const TextConfig& config, int64_t ring_slack, std::unique_ptr<KvStorage> storage)
    : storage_(std::move(storage)), ring_slack_(ring_slack), window_(config.sliding_window) {
  UG_CHECK(ring_slack >= 0, "KvCache: ring slack must be >= 0, got {}", ring_slack);
  for (const auto& l : config.layers) {
    LayerKvCache c;
    c.row_size = l.n_kv_heads * l.head_dim;
    c.ring_capacity = l.kind == LayerKind::Sliding ? config.sliding_window + ring_slack : 0;
    layers_.push_back(std::move(c));
  }
}

KvCache::KvCache(const KvCache& o)
    : layers_(o.layers_),
      storage_(o.storage_ ? o.storage_->clone() : nullptr),
      n_tokens_(o.n_tokens_),
      ring_slack_(o.ring_slack_),
      window_(o.window_) {}

KvCache& KvCache::operator=(const KvCache& o) {
  if (this != &o) *this = KvCache(o);
  return *this;
}

KvCache::~KvCache() = default;

size_t KvCache::bytes() const {
  if (storage_) return storage_->bytes();
  size_t b = 0;
  for (const auto& l : layers_) b += (l.k.capacity() + l.v.capacity()) * sizeof(float);
  return b;
}

size_t KvCache::bytes_for(const TextConfig& config, int64_t ring_slack, int64_t n_tokens, size_t element_bytes) {
  size_t b = 0;
  for (const auto& l : config.layers) {
    int64_t rows = l.kind == LayerKind::Sliding ? std::min(n_tokens, config.sliding_window + ring_slack) : n_tokens;
    b += size_t(2 * rows * l.n_kv_heads * l.head_dim) * element_bytes;
  }
  return b;
}

void KvCache::reserve(int64_t n_tokens) {
  if (storage_) return storage_->reserve(n_tokens);
  for (auto& c : layers_) {
    int64_t rows = c.ring_capacity > 0 ? std::min(n_tokens, c.ring_capacity) : n_tokens;
    c.k.reserve(size_t(rows * c.row_size));
    c.v.reserve(size_t(rows * c.row_size));
  }
}

int64_t KvCache::min_truncate() const {
  // The ring of capacity C holds positions [size - C, size). After truncate(n) the next query (at
  // n) reads keys n-W+1 .. n-1 from the cache, so need n - W + 1 >= size - C  <=>  n >= size -
  // slack - 1.
  int64_t lowest = 0;
  for (const auto& c : layers_) {
    if (c.ring_capacity == 0 || n_tokens_ <= c.ring_capacity) continue;
    lowest = std::max(lowest, n_tokens_ - c.ring_capacity + window_ - 1);
  }
  return std::min(lowest, n_tokens_);
}

void KvCache::truncate(int64_t n) {
  UG_CHECK(can_truncate(n),
           "KvCache::truncate({}): a cache of {} tokens with {} slack ring slots can roll back to "
           "{} at most",
           n, n_tokens_, ring_slack_, min_truncate());
  n_tokens_ = n;
}

void KvCache::store(int64_t i, int64_t start, int64_t n, const float* k, const float* v) {
  UG_CHECK(!storage_, "KvCache::store: this cache's rows live in a device backend's storage, not in host memory");
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
    if (c.k.capacity() < need) {
      size_t cap = std::max(need, c.k.capacity() * 3 / 2);
      c.k.reserve(cap);
      c.v.reserve(cap);
    }
    c.k.resize(need);
    c.v.resize(need);
  }
  std::memcpy(&c.k[size_t(start * rs)], k, size_t(n * rs) * sizeof(float));
  std::memcpy(&c.v[size_t(start * rs)], v, size_t(n * rs) * sizeof(float));
}

}  // namespace ug
