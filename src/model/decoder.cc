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

void Decoder::forward(const ForwardInput& input, KvCache& cache, LogitsMode mode, std::vector<float>& logits,
                      const HiddenTap& tap) {
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
  logits.clear();
  if (mode == LogitsMode::All) logits.resize(size_t(n * V));
  if (mode == LogitsMode::Last && n > 0) logits.resize(size_t(V));
  int64_t begin = 0;
  while (begin < n) {
    int64_t len = std::min(options_.max_chunk, n - begin);
    // Never split a bidirectional block: extend the chunk to the end of a block it cuts.
    if (!input.block_ids.empty()) {
      while (begin + len < n && input.block_ids[size_t(begin + len)] >= 0 &&
             input.block_ids[size_t(begin + len)] == input.block_ids[size_t(begin + len - 1)])
        ++len;
    }
    bool last_chunk = begin + len == n;
    LogitsMode chunk_mode = mode == LogitsMode::All ? LogitsMode::All
                            : (mode == LogitsMode::Last && last_chunk) ? LogitsMode::Last
                                                                       : LogitsMode::None;
    float* out = mode == LogitsMode::All ? logits.data() + begin * V : logits.data();
    forward_chunk(input, begin, len, cache, chunk_mode, out, tap);
    begin += len;
  }
}

void Decoder::embed(const ForwardInput& input, int64_t begin, int64_t n, float* h) {
  const int64_t D = config_.text.hidden_size;
  for (int64_t i = 0; i < n; ++i) {
    size_t idx = size_t(begin + i);
    const float* row = input.embeddings_override.empty() ? nullptr : input.embeddings_override[idx];
    if (row) {
      std::copy(row, row + D, h + i * D);
    } else {
      cpu::embedding_row(weights_.embed_tokens, input.token_ids[idx], embed_scale_, h + i * D);
    }
  }
}

void Decoder::forward_chunk(const ForwardInput& input, int64_t begin, int64_t n, KvCache& cache, LogitsMode mode,
                            float* logits, const HiddenTap& tap) {
  const auto& t = config_.text;
  const int64_t D = t.hidden_size, start = cache.size();
  std::vector<float> h(size_t(n * D)), x(size_t(n * D)), branch(size_t(n * D));
  embed(input, begin, n, h.data());
  if (tap) tap("embeddings", start, n, h.data());
  const int32_t* block_ids = input.block_ids.empty() ? nullptr : input.block_ids.data() + begin;
  for (int64_t li = 0; li < t.n_layers(); ++li) {
    const auto& lw = weights_.layers[size_t(li)];
    // Sandwich norms around attention and MLP; layer_scalar scales the whole stream at the end.
    cpu::rms_norm_to(h.data(), x.data(), n, D, lw.input_layernorm.data(), t.rms_norm_eps);
    attention_block(li, x.data(), n, start, block_ids, cache, branch.data());
    cpu::rms_norm(branch.data(), n, D, lw.post_attention_layernorm.data(), t.rms_norm_eps);
    for (size_t i = 0; i < h.size(); ++i) h[i] += branch[i];
    cpu::rms_norm_to(h.data(), x.data(), n, D, lw.pre_feedforward_layernorm.data(), t.rms_norm_eps);
    mlp_block(li, x.data(), n, branch.data());
    cpu::rms_norm(branch.data(), n, D, lw.post_feedforward_layernorm.data(), t.rms_norm_eps);
    for (size_t i = 0; i < h.size(); ++i) h[i] = (h[i] + branch[i]) * lw.layer_scalar;
    if (tap) tap("layer." + std::to_string(li), start, n, h.data());
  }
  cache.advance(n);
  cpu::rms_norm(h.data(), n, D, weights_.final_norm.data(), t.rms_norm_eps);
  if (tap) tap("final_norm", start, n, h.data());
  if (mode == LogitsMode::All) compute_logits(h.data(), n, logits);
  if (mode == LogitsMode::Last) compute_logits(h.data() + (n - 1) * D, 1, logits);
}

void Decoder::attention_block(int64_t li, const float* x, int64_t n, int64_t start, const int32_t* block_ids,
                              KvCache& cache, float* out) {
  const auto& t = config_.text;
  const auto& l = t.layers[size_t(li)];
  const auto& w = weights_.layers[size_t(li)].attn;
  const int64_t d = l.head_dim, H = t.n_heads, Hkv = l.n_kv_heads;
  std::vector<float> q(size_t(n * H * d)), k(size_t(n * Hkv * d)), v(size_t(n * Hkv * d));
  std::vector<float> attn(size_t(n * H * d));
  cpu::matmul(x, n, w.q_proj, q.data(), pool_);        // [n, H, d]
  cpu::matmul(x, n, w.k_proj, k.data(), pool_);        // [n, Hkv, d]
  if (l.has_v_proj) {
    cpu::matmul(x, n, w.v_proj, v.data(), pool_);      // [n, Hkv, d]
  } else {
    v = k;  // k_eq_v: V is the raw K projection, before k_norm and RoPE
  }
  cpu::rms_norm(q.data(), n * H, d, w.q_norm.data(), t.rms_norm_eps);
  cpu::rms_norm(k.data(), n * Hkv, d, w.k_norm.data(), t.rms_norm_eps);
  cpu::rms_norm(v.data(), n * Hkv, d, nullptr, t.rms_norm_eps);
  std::vector<int64_t> positions(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) positions[size_t(i)] = start + i;
  cpu::rope(q.data(), n, H, d, positions, inv_freq_[size_t(li)]);
  cpu::rope(k.data(), n, Hkv, d, positions, inv_freq_[size_t(li)]);

  const LayerKvCache& c = cache.layer(li);
  bool sliding = l.kind == LayerKind::Sliding;
  cpu::AttentionParams p{.q = q.data(),
                         .out = attn.data(),
                         .n_q = n,
                         .chunk_start = start,
                         .n_heads = H,
                         .n_kv_heads = Hkv,
                         .head_dim = d,
                         .window = sliding ? t.sliding_window : 0,
                         .cache_k = c.k.data(),
                         .cache_v = c.v.data(),
                         .ring_capacity = c.ring_capacity,
                         .chunk_k = k.data(),
                         .chunk_v = v.data(),
                         .block_ids = sliding ? block_ids : nullptr,  // variant A: full layers stay causal
                         .scale = 1.0f};
  cpu::attention(p, pool_);
  cache.store(li, start, n, k.data(), v.data());
  cpu::matmul(attn.data(), n, w.o_proj, out, pool_);
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
