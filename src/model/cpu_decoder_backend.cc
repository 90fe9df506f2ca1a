#include "model/cpu_decoder_backend.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

#include "backend/cpu/matmul.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/row_scan.h"
#include "core/error.h"
#include "model/decoder.h"
#include "model/layer_weight_picker.h"

namespace ug {

CpuDecoderBackend::CpuDecoderBackend(const ModelConfig& config, const ModelWeights& weights, ThreadPool& pool)
    : config_(config), weights_(weights), pool_(pool) {
  for (const auto& l : config.text.layers) inv_freq_.push_back(rope_inv_freq(l));
}

float* CpuDecoderBackend::scratch(Scratch s, int64_t floats) {
  auto& buf = scratch_[size_t(s)];
  if (int64_t(buf.size()) < floats) buf.resize(size_t(floats));
  return buf.data();
}

void CpuDecoderBackend::begin_step(std::span<const BatchItem> items, const StepLayout& layout) {
  for (size_t i = 0; i < items.size(); ++i)
    UG_CHECK(items[i].cache->storage() == nullptr,
             "forward_batch: item {}'s KV cache was made by another backend (its rows are not in "
             "host memory)",
             i);
  items_ = items;
  layout_ = &layout;
}

void CpuDecoderBackend::embed(std::span<const BatchItem> items, float scale, float* h) {
  const int64_t D = config_.text.hidden_size;
  for (size_t i = 0; i < items.size(); ++i) {
    const ForwardInput& input = items[i].input;
    float* rows = h + layout_->row0[i] * D;
    for (size_t t = 0; t < input.token_ids.size(); ++t) {
      const float* row = input.embeddings_override.empty() ? nullptr : input.embeddings_override[t];
      if (row) {
        std::copy(row, row + D, rows + int64_t(t) * D);
      } else {
        cpu::embedding_row(weights_.embed_tokens, input.token_ids[t], scale, rows + int64_t(t) * D);
      }
    }
  }
}

void CpuDecoderBackend::rms_norm(NormWeight w, int64_t layer, const float* x, float* out, int64_t rows, int64_t dim) {
  const float* weight = norm_scale(weights_.layers, weights_.final_norm, w, layer);
  if (x == out) return cpu::rms_norm(out, rows, dim, weight, config_.text.rms_norm_eps);
  cpu::rms_norm_to(x, out, rows, dim, weight, config_.text.rms_norm_eps);
}

void CpuDecoderBackend::add_scaled(float* h, const float* branch, float scale, int64_t n) {
  if (scale == 1.0f) {
    for (int64_t i = 0; i < n; ++i) h[i] += branch[i];
  } else {
    for (int64_t i = 0; i < n; ++i) h[i] = (h[i] + branch[i]) * scale;
  }
}

void CpuDecoderBackend::matmul(LayerMatrix m, int64_t layer, const float* x, int64_t rows, float* y) {
  cpu::matmul(x, rows, layer_matrix(weights_.layers[size_t(layer)], m), y, pool_);
}

void CpuDecoderBackend::copy(const float* src, float* dst, int64_t n) { std::memcpy(dst, src, size_t(n) * 4); }

void CpuDecoderBackend::rope(int64_t layer, float* x, int64_t heads, int64_t head_dim) {
  cpu::rope(x, layout_->total, heads, head_dim, layout_->positions, inv_freq_[size_t(layer)]);
}

void CpuDecoderBackend::gelu_tanh_mul(const float* gate, const float* up, float* out, int64_t n) {
  // Elementwise (out may be gate): a prefill chunk's rows split over the pool; one token's 15,360 values stay on
  // one thread (a pool wake-up would cost more than the ~10 µs they take).
  pool_.parallel_for(n, 1 << 16, [&](int64_t b, int64_t e) { cpu::gelu_tanh_mul(gate + b, up + b, out + b, e - b); });
}

void CpuDecoderBackend::attention(int64_t li, const float* q, const float* k, const float* v, float* out) {
  const auto& t = config_.text;
  const auto& l = t.layers[size_t(li)];
  const int64_t d = l.head_dim, H = t.n_heads, Hkv = l.n_kv_heads;
  const bool sliding = l.kind == LayerKind::Sliding;
  const StepLayout& b = *layout_;
  std::vector<cpu::AttentionParams> calls;
  for (size_t i = 0; i < items_.size(); ++i) {
    if (b.n[i] == 0) continue;
    const LayerKvCache& c = items_[i].cache->layer(li);
    const int64_t r0 = b.row0[i];
    const auto& block_ids = items_[i].input.block_ids;
    calls.push_back({.q = q + r0 * H * d,
                     .out = out + r0 * H * d,
                     .n_q = b.n[i],
                     .chunk_start = b.start[i],
                     .n_heads = H,
                     .n_kv_heads = Hkv,
                     .head_dim = d,
                     .window = sliding ? t.sliding_window : 0,
                     .cache_k = c.k.data(),
                     .cache_v = c.v.data(),
                     .ring_capacity = c.ring_capacity,
                     .chunk_k = k + r0 * Hkv * d,
                     .chunk_v = v + r0 * Hkv * d,
                     // variant A: full layers stay causal
                     .block_ids = sliding && !block_ids.empty() ? block_ids.data() : nullptr,
                     .scale = 1.0f});
  }
  cpu::attention_batch(calls, pool_);
  for (size_t i = 0; i < items_.size(); ++i) {
    if (b.n[i] == 0) continue;
    const int64_t r0 = b.row0[i];
    items_[i].cache->store(li, b.start[i], b.n[i], k + r0 * Hkv * d, v + r0 * Hkv * d);
  }
}

namespace {

// The excluded ids as a sorted set asked in increasing order (a row is scanned once, left to right): O(1) per
// question instead of a search of the list for every one of the 262,144 logits.
class ExcludedCursor {
 public:
  explicit ExcludedCursor(std::span<const int32_t> excluded) : ids_(excluded.begin(), excluded.end()) {
    std::sort(ids_.begin(), ids_.end());
  }
  // The first excluded id at or after i (n if none), so that a run of ids up to it needs no question; i must not
  // decrease between calls.
  int64_t next(int64_t i, int64_t n) {
    while (at_ < ids_.size() && ids_[at_] < i) ++at_;
    return at_ < ids_.size() ? std::min<int64_t>(ids_[at_], n) : n;
  }
  bool skip(int64_t i) { return next(i, i + 1) == i; }  // whether i is excluded

 private:
  std::vector<int32_t> ids_;
  size_t at_ = 0;
};

}  // namespace

int32_t argmax_lowest(const float* x, int64_t n, std::span<const int32_t> excluded) {
  ExcludedCursor cursor(excluded);
  int64_t best = -1;
  float best_value = 0.0f;
  for (int64_t i = 0; i < n;) {  // runs of considered ids, each excluded id stepped over
    const int64_t end = cursor.next(i, n);
    if (end > i) {
      const cpu::RowMax run = cpu::row_max(x + i, end - i);
      if (run.bad) return -1;
      if (best < 0 || run.max > best_value) {
        best = i + cpu::first_equal(x + i, end - i, run.max);
        best_value = run.max;
      }
    }
    i = end + 1;
  }
  return int32_t(std::max<int64_t>(best, 0));  // everything excluded: id 0
}

// Same rules as the sampler's top-k (runtime/sampler.cc): a size-k min-heap finds the k-th largest finite
// value, then every finite value at or above it is taken.
void select_top_logits(const float* x, int64_t n, std::span<const int32_t> excluded, TopLogits& top) {
  top.ids.clear();
  top.values.clear();
  top.full.clear();
  top.bad = false;
  const size_t k = size_t(std::max(top.k, 1));
  std::vector<float> heap;
  ExcludedCursor first_pass(excluded);
  for (int64_t i = 0; i < n; ++i) {
    if (first_pass.skip(i)) continue;
    if (!std::isfinite(x[i])) {
      if (x[i] != -INFINITY) top.bad = true;
      continue;
    }
    if (heap.size() < k) {
      heap.push_back(x[i]);
      std::push_heap(heap.begin(), heap.end(), std::greater<float>());
    } else if (x[i] > heap.front()) {
      std::pop_heap(heap.begin(), heap.end(), std::greater<float>());
      heap.back() = x[i];
      std::push_heap(heap.begin(), heap.end(), std::greater<float>());
    }
  }
  if (top.bad) return;
  const float threshold = heap.size() == k ? heap.front() : -INFINITY;
  ExcludedCursor second_pass(excluded);
  for (int64_t i = 0; i < n; ++i) {
    if (std::isfinite(x[i]) && x[i] >= threshold && !second_pass.skip(i)) {
      top.ids.push_back(int32_t(i));
      top.values.push_back(x[i]);
    }
  }
}

// Gathers the requested rows so that the lm_head matmul reads the [vocab, hidden] table once per step.
void CpuDecoderBackend::logits(const float* h, std::span<const LogitsRequest> requests) {
  const int64_t D = config_.text.hidden_size, V = config_.text.vocab_size;
  if (requests.empty()) return;
  // What a request asks of its rows of logits besides the rows themselves.
  const auto choose = [V](const LogitsRequest& r, const float* rows_of) {
    if (r.argmax) *r.argmax = argmax_lowest(rows_of, V, r.excluded);
    if (r.top) select_top_logits(rows_of, V, r.excluded, *r.top);
  };
  // Fast path: one request with a buffer writes straight into it.
  if (requests.size() == 1 && requests[0].out) {
    const LogitsRequest& r = requests[0];
    compute_logits(h + r.row * D, r.count, r.out);
    choose(r, r.out);
    return;
  }
  std::vector<int64_t> first_row(requests.size());  // of each request in the gathered rows
  int64_t rows = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    first_row[i] = rows;
    rows += requests[i].count;
  }
  gathered_.resize(size_t(rows * D));
  gathered_logits_.resize(size_t(rows * V));
  for (size_t i = 0; i < requests.size(); ++i) {
    const LogitsRequest& r = requests[i];
    std::copy(h + r.row * D, h + (r.row + r.count) * D, gathered_.begin() + first_row[i] * D);
  }
  compute_logits(gathered_.data(), rows, gathered_logits_.data());
  // Each request's copy / argmax / top-k reads its own rows and writes its own outputs: one pool task each.
  pool_.run(int64_t(requests.size()), [&](int64_t i) {
    const LogitsRequest& r = requests[size_t(i)];
    const float* rows_of = gathered_logits_.data() + first_row[size_t(i)] * V;
    if (r.out) std::copy(rows_of, rows_of + r.count * V, r.out);
    choose(r, rows_of);
  });
}

void CpuDecoderBackend::compute_logits(const float* h, int64_t n, float* out) {
  const int64_t V = config_.text.vocab_size;
  cpu::matmul(h, n, weights_.lm_head, out, pool_);
  if (!config_.text.final_logit_softcap) return;
  const float cap = float(*config_.text.final_logit_softcap);
  // 262k tanh per token (~0.2-1 ms on one core, vectorized): split over the pool.
  pool_.parallel_for(n * V, 1 << 15, [&](int64_t b, int64_t e) { cpu::softcap(out + b, e - b, cap); });
}

}  // namespace ug
