// KV rows of one sequence in device memory (KvStorage of the CUDA backend): per layer [slots,
// kv_heads, head_dim] for K and V, bf16 (what a bf16 model needs; cuda::kv_store rounds the f32 rows), f32
// (the f32-faithful precision) or fp8 e4m3 (half of bf16's bytes, on request). Full layers grow by 1.5x as the sequence
// grows (grow() before a step writes); sliding layers hold at most their ring capacity (window + slack) rows.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "backend/cuda/attention.h"
#include "backend/cuda/device_buffer.h"
#include "model/config.h"
#include "model/kv_cache.h"

namespace ug::cuda {

class DeviceKvStorage final : public KvStorage {
 public:
  // device: the CUDA device the rows live on (selected before every allocation: the server's scheduler thread
  // calls these, not the thread that made the backend).
  DeviceKvStorage(const TextConfig& config, int64_t ring_slack, int device, KvType type);

  std::unique_ptr<KvStorage> clone() const override;
  size_t bytes() const override;
  void reserve(int64_t n_tokens) override;

  // Makes room for positions [0, n_tokens) (capped at each ring's capacity); keeps the rows held.
  void grow(int64_t n_tokens);
  void* k(int64_t layer) { return layers_[size_t(layer)].k.data(); }
  void* v(int64_t layer) { return layers_[size_t(layer)].v.data(); }
  KvType type() const { return type_; }
  int64_t ring_capacity(int64_t layer) const { return layers_[size_t(layer)].ring_capacity; }

 private:
  struct Layer {
    PooledBuffer<uint16_t> k, v;                        // the rows' bytes, in 16-bit units
    int64_t row_size = 0, ring_capacity = 0, rows = 0;  // rows allocated
  };
  DeviceKvStorage() = default;
  void resize(Layer& l, int64_t rows) const;

  std::vector<Layer> layers_;
  int device_ = 0;
  KvType type_ = KvType::Bf16;
};

}  // namespace ug::cuda
