// Per-sequence KV cache of the decoder. Rows hold post-norm, post-RoPE K and post-v_norm V as f32:
// [slot, n_kv_heads, head_dim].
//
// Full layers keep every position (linear, slot = position). Sliding layers keep a ring of
// `window + slack` slots (slot = position % capacity): attention addresses slots by capacity and
// masks by window (cpu::AttentionParams), so the extra `slack` slots only keep older positions
// around. They are what makes a rollback possible: after truncate(n) the next token needs positions
// n-W+1 .. n-1, which the ring still holds as long as n >= size() - slack - 1 (can_truncate tells
// exactly).
//
// Memory per token (f32): 2 * n_kv_heads * head_dim * 4 bytes per layer; sliding layers stop
// growing at window + slack tokens. On the 12B model a sliding layer is 16 KiB/token, so 40 sliding
// layers with W = 1024 hold 640 MiB per sequence, and each 1024 tokens of slack add another 640 MiB
// (full layers: 32 KiB per token for all 8). Storage grows lazily (reserve() sizes it up front for
// budgeted use).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "model/config.h"

namespace ug {

struct LayerKvCache {
  std::vector<float> k, v;
  int64_t row_size = 0;       // n_kv_heads * head_dim
  int64_t ring_capacity = 0;  // 0: linear (full attention); else window + slack slots
};

// Where a backend other than the CPU keeps a cache's rows (device memory). KvCache keeps the
// bookkeeping (size, ring geometry, truncation rules) and delegates the rows; the backend that made
// it stores and reads them. Same slot rule as the host rows: slot = position (full layers) or
// position % ring_capacity.
class KvStorage {
 public:
  virtual ~KvStorage() = default;
  virtual std::unique_ptr<KvStorage> clone() const = 0;  // an independent copy of the rows
  virtual size_t bytes() const = 0;                      // memory held now
  virtual void reserve(int64_t n_tokens) = 0;            // room for n_tokens positions; never shrinks
};

class KvCache {
 public:
  // ring_slack: extra ring slots on sliding layers (rollback depth); 0 = ring of exactly `window`.
  // storage: rows kept by a device backend (DecoderBackend::new_kv_storage); nullptr = host rows
  // (CPU).
  explicit KvCache(const TextConfig& config, int64_t ring_slack = 0, std::unique_ptr<KvStorage> storage = nullptr);
  // Copyable: a copy is an independent clone (prefix-cache sharing).
  KvCache(const KvCache& other);
  KvCache& operator=(const KvCache& other);
  KvCache(KvCache&&) noexcept = default;
  KvCache& operator=(KvCache&&) noexcept = default;
  ~KvCache();

  int64_t size() const { return n_tokens_; }  // positions already processed
  void clear() { n_tokens_ = 0; }
  size_t bytes() const;  // memory held now (allocated capacity)
  int64_t ring_slack() const { return ring_slack_; }

  // Bytes a cache of this shape holds after reserve(n_tokens) (full layers n rows, rings min(n,
  // capacity)) at element_bytes per value (DecoderBackend::kv_element_bytes).
  static size_t bytes_for(const TextConfig& config, int64_t ring_slack, int64_t n_tokens,
                          size_t element_bytes = sizeof(float));
  // Allocates room for n_tokens positions so that storing them never reallocates; never shrinks.
  void reserve(int64_t n_tokens);

  // Smallest n for which truncate(n) keeps every key the next position needs (0 when nothing was
  // overwritten in any ring yet).
  int64_t min_truncate() const;
  bool can_truncate(int64_t n) const { return n >= min_truncate() && n <= n_tokens_; }
  // Rolls back to the first n positions (throws ug::Error unless can_truncate(n)). Memory is kept.
  void truncate(int64_t n);

  // Device rows, or nullptr when the rows are the host vectors of layer(i).
  KvStorage* storage() { return storage_.get(); }
  const KvStorage* storage() const { return storage_.get(); }

  // Geometry of layer i (row_size, ring_capacity); k/v hold the rows only when storage() is
  // nullptr.
  LayerKvCache& layer(int64_t i) { return layers_[size_t(i)]; }
  const LayerKvCache& layer(int64_t i) const { return layers_[size_t(i)]; }

  // Stores `n` new rows (positions start .. start+n-1) of layer i.
  void store(int64_t i, int64_t start, int64_t n, const float* k, const float* v);
  void advance(int64_t n) { n_tokens_ += n; }

 private:
  std::vector<LayerKvCache> layers_;
  std::unique_ptr<KvStorage> storage_;
  int64_t n_tokens_ = 0;
  int64_t ring_slack_ = 0;
  int64_t window_ = 0;
};

}  // namespace ug
