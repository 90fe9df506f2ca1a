// Per-sequence KV cache for the CPU decoder. Sliding layers keep only the last `window` positions in a
// ring buffer (slot = position % window); full layers keep every position. (Rollback for speculative
// decoding will need a few slack slots in the ring; it is not needed yet.) Rows hold post-norm,
// post-RoPE K and post-v_norm V as f32: [slot, n_kv_heads, head_dim].
#pragma once

#include <cstdint>
#include <vector>

#include "model/config.h"

namespace ug {

struct LayerKvCache {
  std::vector<float> k, v;
  int64_t row_size = 0;       // n_kv_heads * head_dim
  int64_t ring_capacity = 0;  // 0: linear (full attention)
};

class KvCache {
 public:
  explicit KvCache(const TextConfig& config);

  int64_t size() const { return n_tokens_; }  // positions already processed
  void clear() { n_tokens_ = 0; }
  size_t bytes() const;  // memory held now

  LayerKvCache& layer(int64_t i) { return layers_[size_t(i)]; }
  const LayerKvCache& layer(int64_t i) const { return layers_[size_t(i)]; }

  // Stores `n` new rows (positions start .. start+n-1) of layer i.
  void store(int64_t i, int64_t start, int64_t n, const float* k, const float* v);
  void advance(int64_t n) { n_tokens_ += n; }

 private:
  std::vector<LayerKvCache> layers_;
  int64_t n_tokens_ = 0;
};

}  // namespace ug
