#include "model/decoder.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "backend/cpu/matmul.h"
#include "backend/cpu/ops.h"
#include "core/error.h"

namespace ug {

std::vector<float> rope_inv_freq(const LayerConfig& layer) {
  const int64_t d = layer.head_dim, half = d / 2;
  int64_t rotating = half;
  if (layer.rope.type == RopeType::Proportional) rotating = int64_t(layer.rope.partial_rotary_factor * double(half));
  std::vector<float> f(size_t(half), 0.0f);
  for (int64_t i = 0; i < rotating; ++i) {
    float exponent = float(2 * i) / float(d);  // f32, like torch.arange(...).float() / dim
    f[size_t(i)] = float(1.0 / std::pow(layer.rope.theta, double(exponent)));
  }
  return f;
}

int64_t hf_hidden_state_index(std::string_view name, int64_t n_layers) {
  if (name == "embeddings") return 0;
  if (name == "final_norm") return n_layers;
  if (name.substr(0, 6) != "layer.") return -1;
  int64_t layer = std::stoll(std::string(name.substr(6)));
  return layer + 1 < n_layers ? layer + 1 : -1;  // HF's last entry is the final-normed output instead
}

Decoder::Decoder(const ModelConfig& config, const ModelWeights& weights, ThreadPool& pool, DecoderOptions options)
    : config_(config), weights_(weights), pool_(pool), options_(options) {
  // HF keeps sqrt(hidden) as an fp32 buffer; activations here are f32, so it is used unrounded.
  embed_scale_ = float(std::sqrt(double(config.text.hidden_size)));
  for (const auto& l : config.text.layers) inv_freq_.push_back(rope_inv_freq(l));
  UG_CHECK(options_.max_chunk > 0, "decoder: max_chunk must be positive");
}

bool is_chunk_boundary(std::span<const int32_t> block_ids, int64_t end) {
  if (block_ids.empty() || end <= 0 || end >= int64_t(block_ids.size())) return true;
  int32_t b = block_ids[size_t(end)];
  return b < 0 || b != block_ids[size_t(end - 1)];
}

void Decoder::validate(const ForwardInput& input) const {
  const int64_t n = int64_t(input.token_ids.size());
  const int64_t V = config_.text.vocab_size;
  UG_CHECK(input.block_ids.empty() || int64_t(input.block_ids.size()) == n,
           "forward: {} block ids for {} tokens", input.block_ids.size(), n);
  UG_CHECK(input.embeddings_override.empty() || int64_t(input.embeddings_override.size()) == n,
           "forward: {} embedding overrides for {} tokens", input.embeddings_override.size(), n);
  for (int64_t i = 0; i < n; ++i) {
    int32_t id = input.token_ids[size_t(i)];
    UG_CHECK(id >= 0 && id < V, "token {} at index {} is outside the vocabulary [0, {})", id, i, V);
  }
}

void Decoder::forward(const ForwardInput& input, KvCache& cache, LogitsMode mode, std::vector<float>& logits,
                      const HiddenTap& tap) {
  const int64_t n = int64_t(input.token_ids.size());
  const int64_t V = config_.text.vocab_size;
  validate(input);
  logits.clear();
  if (mode == LogitsMode::All) logits.resize(size_t(n * V));
  if (mode == LogitsMode::Last && n > 0) logits.resize(size_t(V));
  int64_t begin = 0;
  while (begin < n) {
    int64_t end = std::min(begin + options_.max_chunk, n);
    while (!is_chunk_boundary(input.block_ids, end)) ++end;  // extend to the end of a block it cuts
    const int64_t len = end - begin;
    auto sub = [&](auto span) { return span.empty() ? span : span.subspan(size_t(begin), size_t(len)); };
    BatchItem item{.input = {.token_ids = sub(input.token_ids),
                             .embeddings_override = sub(input.embeddings_override),
                             .block_ids = sub(input.block_ids)},
                   .cache = &cache,
                   .mode = mode == LogitsMode::All                  ? LogitsMode::All
                           : (mode == LogitsMode::Last && end == n) ? LogitsMode::Last
                                                                    : LogitsMode::None,
                   .logits = mode == LogitsMode::All ? logits.data() + begin * V : logits.data()};
    forward_batch({&item, 1}, tap);
    begin = end;
  }
}

// Rows of item i are [row0[i], row0[i] + n[i]) of every [N, ...] activation; start[i] = its cache size.
struct Decoder::BatchLayout {
  std::vector<int64_t> row0, n, start;
  std::vector<int64_t> positions;  // [N] absolute position of every row
  int64_t total = 0;
};

void Decoder::forward_batch(std::span<const BatchItem> items, const HiddenTap& tap) {
  const auto& t = config_.text;
  const int64_t D = t.hidden_size;
  BatchLayout b;
  for (size_t i = 0; i < items.size(); ++i) {
    const BatchItem& it = items[i];
    UG_CHECK(it.cache != nullptr, "forward_batch: item {} has no cache", i);
    UG_CHECK(it.mode == LogitsMode::None || it.logits != nullptr, "forward_batch: item {} has no logits buffer", i);
    for (size_t j = 0; j < i; ++j)
      UG_CHECK(items[j].cache != it.cache, "forward_batch: items {} and {} share one KV cache", j, i);
    validate(it.input);
    const int64_t n = int64_t(it.input.token_ids.size()), start = it.cache->size();
    b.row0.push_back(b.total);
    b.n.push_back(n);
    b.start.push_back(start);
    for (int64_t k = 0; k < n; ++k) b.positions.push_back(start + k);
    b.total += n;
  }
  if (b.total == 0) return;
  const int64_t N = b.total;
  std::vector<float> h(size_t(N * D)), x(size_t(N * D)), branch(size_t(N * D));
  auto tap_items = [&](const std::string& name) {
    for (size_t i = 0; i < items.size(); ++i)
      if (b.n[i] > 0) tap(name, b.start[i], b.n[i], h.data() + b.row0[i] * D);
  };
  for (size_t i = 0; i < items.size(); ++i) embed(items[i].input, h.data() + b.row0[i] * D);
  if (tap) tap_items("embeddings");
  for (int64_t li = 0; li < t.n_layers(); ++li) {
    const auto& lw = weights_.layers[size_t(li)];
    // Sandwich norms around attention and MLP; layer_scalar scales the whole stream at the end.
    cpu::rms_norm_to(h.data(), x.data(), N, D, lw.input_layernorm.data(), t.rms_norm_eps);
    attention_block(li, x.data(), items, b, branch.data());
    cpu::rms_norm(branch.data(), N, D, lw.post_attention_layernorm.data(), t.rms_norm_eps);
    for (size_t i = 0; i < h.size(); ++i) h[i] += branch[i];
    cpu::rms_norm_to(h.data(), x.data(), N, D, lw.pre_feedforward_layernorm.data(), t.rms_norm_eps);
    mlp_block(li, x.data(), N, branch.data());
    cpu::rms_norm(branch.data(), N, D, lw.post_feedforward_layernorm.data(), t.rms_norm_eps);
    for (size_t i = 0; i < h.size(); ++i) h[i] = (h[i] + branch[i]) * lw.layer_scalar;
    if (tap) tap_items("layer." + std::to_string(li));
  }
  for (size_t i = 0; i < items.size(); ++i) items[i].cache->advance(b.n[i]);
  cpu::rms_norm(h.data(), N, D, weights_.final_norm.data(), t.rms_norm_eps);
  if (tap) tap_items("final_norm");
  batch_logits(items, b, h.data());
}

// Gathers the rows that need logits (All: every row of the item, Last: its last row) so that the
// lm_head matmul reads the [vocab, hidden] table once for the whole batch.
void Decoder::batch_logits(std::span<const BatchItem> items, const BatchLayout& b, const float* h) {
  const int64_t D = config_.text.hidden_size, V = config_.text.vocab_size;
  std::vector<int64_t> first_out(items.size(), -1);
  int64_t rows = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    if (b.n[i] == 0 || items[i].mode == LogitsMode::None) continue;
    first_out[i] = rows;
    rows += items[i].mode == LogitsMode::All ? b.n[i] : 1;
  }
  if (rows == 0) return;
  // Fast path: one item needing all its rows writes straight into its buffer.
  if (items.size() == 1 && items[0].mode == LogitsMode::All) return compute_logits(h, b.n[0], items[0].logits);
  std::vector<float> hs(size_t(rows * D)), out(size_t(rows * V));
  for (size_t i = 0; i < items.size(); ++i) {
    if (first_out[i] < 0) continue;
    int64_t src = items[i].mode == LogitsMode::All ? b.row0[i] : b.row0[i] + b.n[i] - 1;
    int64_t cnt = items[i].mode == LogitsMode::All ? b.n[i] : 1;
    std::copy(h + src * D, h + (src + cnt) * D, hs.begin() + first_out[i] * D);
  }
  compute_logits(hs.data(), rows, out.data());
  for (size_t i = 0; i < items.size(); ++i) {
    if (first_out[i] < 0) continue;
    int64_t cnt = items[i].mode == LogitsMode::All ? b.n[i] : 1;
    std::copy(out.begin() + first_out[i] * V, out.begin() + (first_out[i] + cnt) * V, items[i].logits);
  }
}

void Decoder::embed(const ForwardInput& input, float* h) {
  const int64_t D = config_.text.hidden_size;
  for (size_t i = 0; i < input.token_ids.size(); ++i) {
    const float* row = input.embeddings_override.empty() ? nullptr : input.embeddings_override[i];
    if (row) {
      std::copy(row, row + D, h + int64_t(i) * D);
    } else {
      cpu::embedding_row(weights_.embed_tokens, input.token_ids[i], embed_scale_, h + int64_t(i) * D);
    }
  }
}

void Decoder::attention_block(int64_t li, const float* x, std::span<const BatchItem> items, const BatchLayout& b,
                              float* out) {
  const auto& t = config_.text;
  const auto& l = t.layers[size_t(li)];
  const auto& w = weights_.layers[size_t(li)].attn;
  const int64_t d = l.head_dim, H = t.n_heads, Hkv = l.n_kv_heads, N = b.total;
  std::vector<float> q(size_t(N * H * d)), k(size_t(N * Hkv * d)), v(size_t(N * Hkv * d));
  std::vector<float> attn(size_t(N * H * d));
  cpu::matmul(x, N, w.q_proj, q.data(), pool_);        // [N, H, d]
  cpu::matmul(x, N, w.k_proj, k.data(), pool_);        // [N, Hkv, d]
  if (l.has_v_proj) {
    cpu::matmul(x, N, w.v_proj, v.data(), pool_);      // [N, Hkv, d]
  } else {
    v = k;  // k_eq_v: V is the raw K projection, before k_norm and RoPE
  }
  cpu::rms_norm(q.data(), N * H, d, w.q_norm.data(), t.rms_norm_eps);
  cpu::rms_norm(k.data(), N * Hkv, d, w.k_norm.data(), t.rms_norm_eps);
  cpu::rms_norm(v.data(), N * Hkv, d, nullptr, t.rms_norm_eps);
  cpu::rope(q.data(), N, H, d, b.positions, inv_freq_[size_t(li)]);
  cpu::rope(k.data(), N, Hkv, d, b.positions, inv_freq_[size_t(li)]);

  // Attention per item against its own cache (all items in one parallel loop), then store the new rows.
  const bool sliding = l.kind == LayerKind::Sliding;
  std::vector<cpu::AttentionParams> calls;
  for (size_t i = 0; i < items.size(); ++i) {
    if (b.n[i] == 0) continue;
    const LayerKvCache& c = items[i].cache->layer(li);
    const int64_t r0 = b.row0[i];
    const int32_t* block_ids = items[i].input.block_ids.empty() ? nullptr : items[i].input.block_ids.data();
    calls.push_back({.q = q.data() + r0 * H * d,
                     .out = attn.data() + r0 * H * d,
                     .n_q = b.n[i],
                     .chunk_start = b.start[i],
                     .n_heads = H,
                     .n_kv_heads = Hkv,
                     .head_dim = d,
                     .window = sliding ? t.sliding_window : 0,
                     .cache_k = c.k.data(),
                     .cache_v = c.v.data(),
                     .ring_capacity = c.ring_capacity,
                     .chunk_k = k.data() + r0 * Hkv * d,
                     .chunk_v = v.data() + r0 * Hkv * d,
                     .block_ids = sliding ? block_ids : nullptr,  // variant A: full layers stay causal
                     .scale = 1.0f});
  }
  cpu::attention_batch(calls, pool_);
  for (size_t i = 0; i < items.size(); ++i) {
    if (b.n[i] == 0) continue;
    const int64_t r0 = b.row0[i];
    items[i].cache->store(li, b.start[i], b.n[i], k.data() + r0 * Hkv * d, v.data() + r0 * Hkv * d);
  }
  cpu::matmul(attn.data(), N, w.o_proj, out, pool_);
}

void Decoder::mlp_block(int64_t li, const float* x, int64_t n, float* out) {
  const auto& w = weights_.layers[size_t(li)].mlp;
  const int64_t I = config_.text.intermediate_size;
  std::vector<float> gate(size_t(n * I)), up(size_t(n * I));
  cpu::matmul(x, n, w.gate_proj, gate.data(), pool_);
  cpu::matmul(x, n, w.up_proj, up.data(), pool_);
  cpu::gelu_tanh_mul(gate.data(), up.data(), gate.data(), n * I);
  cpu::matmul(gate.data(), n, w.down_proj, out, pool_);
}

void Decoder::compute_logits(const float* h, int64_t n, float* logits) {
  const int64_t V = config_.text.vocab_size;
  cpu::matmul(h, n, weights_.lm_head, logits, pool_);
  if (!config_.text.final_logit_softcap) return;
  const float cap = float(*config_.text.final_logit_softcap);
  // 262k tanh per token is a few ms on one core: split it over the pool.
  pool_.parallel_for(n * V, 1 << 15, [&](int64_t b, int64_t e) { cpu::softcap(logits + b, e - b, cap); });
}

}  // namespace ug
