// The CPU implementation of DecoderBackend: f32 activations in host memory, weights used in place
// (model/weights.h), rows of the KV cache in the cache's host vectors. Every op is row-wise and
// cpu::matmul's per-row result does not depend on the other rows, so a batched step is bitwise
// equal to running each item alone.
#pragma once

#include <array>
#include <span>
#include <vector>

#include "core/thread_pool.h"
#include "model/config.h"
#include "model/decoder_backend.h"
#include "model/weights.h"

namespace ug {

class CpuDecoderBackend final : public DecoderBackend {
 public:
  CpuDecoderBackend(const ModelConfig& config, const ModelWeights& weights, ThreadPool& pool);

  std::string_view name() const override { return "cpu"; }
  std::unique_ptr<KvStorage> new_kv_storage(int64_t) override { return nullptr; }
  float* scratch(Scratch s, int64_t floats) override;
  void begin_step(std::span<const BatchItem> items, const StepLayout& layout) override;
  void embed(std::span<const BatchItem> items, float scale, float* h) override;
  void rms_norm(NormWeight w, int64_t layer, const float* x, float* out, int64_t rows, int64_t dim) override;
  void add_scaled(float* h, const float* branch, float scale, int64_t n) override;
  void matmul(LayerMatrix m, int64_t layer, const float* x, int64_t rows, float* y) override;
  void copy(const float* src, float* dst, int64_t n) override;
  void rope(int64_t layer, float* x, int64_t heads, int64_t head_dim) override;
  void gelu_tanh_mul(const float* gate, const float* up, float* out, int64_t n) override;
  void attention(int64_t layer, const float* q, const float* k, const float* v, float* out) override;
  void logits(const float* h, std::span<const LogitsRequest> requests) override;
  const float* to_host(const float* x, int64_t, std::vector<float>&) override { return x; }

 private:
  void compute_logits(const float* h, int64_t n, float* out);

  const ModelConfig& config_;
  const ModelWeights& weights_;
  ThreadPool& pool_;
  std::vector<std::vector<float>> inv_freq_;  // per layer, head_dim / 2
  std::array<std::vector<float>, size_t(Scratch::Count)> scratch_;
  std::vector<float> gathered_, gathered_logits_;
  std::span<const BatchItem> items_;  // of the current step
  const StepLayout* layout_ = nullptr;
};

}  // namespace ug
