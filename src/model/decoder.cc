#include "model/decoder.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"
#include "model/cpu_decoder_backend.h"

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
    : Decoder(config, weights, std::make_unique<CpuDecoderBackend>(config, weights, pool), options) {}

Decoder::Decoder(const ModelConfig& config, const ModelWeights& weights, std::unique_ptr<DecoderBackend> backend,
                 DecoderOptions options)
    : config_(config), backend_(std::move(backend)), options_(options) {
  for (const auto& l : weights.layers) layer_scalar_.push_back(l.layer_scalar);
  // HF keeps sqrt(hidden) as an fp32 buffer; activations here are f32, so it is used unrounded.
  embed_scale_ = float(std::sqrt(double(config.text.hidden_size)));
  UG_CHECK(backend_ != nullptr, "decoder: no backend");
  UG_CHECK(options_.max_chunk > 0, "decoder: max_chunk must be positive");
}

Decoder::~Decoder() = default;

KvCache Decoder::new_cache(int64_t ring_slack) const {
  return KvCache(config_.text, ring_slack, backend_->new_kv_storage(ring_slack));
}

bool is_chunk_boundary(std::span<const int32_t> block_ids, int64_t end) {
  if (block_ids.empty() || end <= 0 || end >= int64_t(block_ids.size())) return true;
  int32_t b = block_ids[size_t(end)];
  return b < 0 || b != block_ids[size_t(end - 1)];
}

void Decoder::validate(const ForwardInput& input) const {
  const int64_t n = int64_t(input.token_ids.size());
  const int64_t V = config_.text.vocab_size;
  UG_CHECK(input.block_ids.empty() || int64_t(input.block_ids.size()) == n, "forward: {} block ids for {} tokens",
           input.block_ids.size(), n);
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

void Decoder::tap_items(const HiddenTap& tap, const std::string& name, std::span<const BatchItem> items,
                        const StepLayout& b, const float* h) {
  const int64_t D = config_.text.hidden_size;
  std::vector<float> host;
  const float* all = backend_->to_host(h, b.total * D, host);
  for (size_t i = 0; i < items.size(); ++i)
    if (b.n[i] > 0) tap(name, b.start[i], b.n[i], all + b.row0[i] * D);
}

void Decoder::forward_batch(std::span<const BatchItem> items, const HiddenTap& tap) {
  const auto& t = config_.text;
  const int64_t D = t.hidden_size;
  StepLayout b;
  for (size_t i = 0; i < items.size(); ++i) {
    const BatchItem& it = items[i];
    UG_CHECK(it.cache != nullptr, "forward_batch: item {} has no cache", i);
    UG_CHECK(it.mode == LogitsMode::None || it.logits != nullptr ||
                 (it.mode == LogitsMode::Last && (it.argmax || it.top_logits)),
             "forward_batch: item {} has no logits buffer", i);
    UG_CHECK(!it.argmax || it.mode == LogitsMode::Last,
             "forward_batch: item {} asks for an argmax without LogitsMode::Last", i);
    UG_CHECK(!it.top_logits || it.mode == LogitsMode::Last,
             "forward_batch: item {} asks for top logits without LogitsMode::Last", i);
    UG_CHECK(!it.top_logits || (it.top_logits->k >= 1 && it.top_logits->k <= kMaxTopLogitsK),
             "forward_batch: item {} asks for the top {} logits, expected 1 .. {}", i,
             it.top_logits ? it.top_logits->k : 0, kMaxTopLogitsK);
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
  DecoderBackend& be = *backend_;
  be.begin_step(items, b);
  float* h = be.scratch(Scratch::Hidden, N * D);
  float* x = be.scratch(Scratch::Normed, N * D);
  float* branch = be.scratch(Scratch::Branch, N * D);
  be.embed(items, embed_scale_, h);
  if (tap) tap_items(tap, "embeddings", items, b, h);
  // Sandwich norms around attention and MLP; layer_scalar scales the whole stream at the end of a layer. Each
  // residual step also makes the next sublayer's normed input (the next layer's, except after the last).
  be.rms_norm(NormWeight::Input, 0, h, x, N, D);
  for (int64_t li = 0; li < t.n_layers(); ++li) {
    attention_block(li, x, b, branch);
    be.residual_norm({.post = NormWeight::PostAttention, .post_layer = li, .next = NormWeight::PreFeedforward,
                      .next_layer = li},
                     branch, h, x, N, D);
    be.feed_forward(li, t.intermediate_size, x, N, branch);
    const bool last = li + 1 == t.n_layers();
    be.residual_norm({.post = NormWeight::PostFeedforward,
                      .post_layer = li,
                      .scale = layer_scalar_[size_t(li)],
                      .next = NormWeight::Input,
                      .next_layer = li + 1},
                     branch, h, last ? nullptr : x, N, D);
    if (tap) tap_items(tap, "layer." + std::to_string(li), items, b, h);
  }
  for (size_t i = 0; i < items.size(); ++i) items[i].cache->advance(b.n[i]);
  be.rms_norm(NormWeight::Final, 0, h, h, N, D);
  if (tap) tap_items(tap, "final_norm", items, b, h);
  step_logits(items, b, h);
}

// Rows that need logits: All -> every row of the item, Last -> its last row.
void Decoder::step_logits(std::span<const BatchItem> items, const StepLayout& b, const float* h) {
  std::vector<LogitsRequest> requests;
  for (size_t i = 0; i < items.size(); ++i) {
    if (b.n[i] == 0 || items[i].mode == LogitsMode::None) continue;
    if (items[i].mode == LogitsMode::All) {
      requests.push_back({.row = b.row0[i], .count = b.n[i], .out = items[i].logits});
    } else {
      requests.push_back({.row = b.row0[i] + b.n[i] - 1,
                          .count = 1,
                          .out = items[i].logits,
                          .argmax = items[i].argmax,
                          .top = items[i].top_logits,
                          .excluded = items[i].argmax_excluded});
    }
  }
  backend_->logits(h, requests);
}

void Decoder::attention_block(int64_t li, const float* x, const StepLayout& b, float* out) {
  const auto& t = config_.text;
  const auto& l = t.layers[size_t(li)];
  const int64_t d = l.head_dim, H = t.n_heads, Hkv = l.n_kv_heads, N = b.total;
  DecoderBackend& be = *backend_;
  float* q = be.scratch(Scratch::Q, N * H * d);    // [N, H, d]
  float* k = be.scratch(Scratch::K, N * Hkv * d);  // [N, Hkv, d]
  float* v = be.scratch(Scratch::V, N * Hkv * d);  // [N, Hkv, d]
  float* attn = be.scratch(Scratch::Attn, N * H * d);
  be.attention_inputs(li, {.rows = N, .heads = H, .kv_heads = Hkv, .head_dim = d, .has_v_proj = l.has_v_proj}, x, q,
                      k, v);
  be.attention(li, q, k, v, attn);  // per item against its own cache; then stores the new rows
  be.matmul(LayerMatrix::O, li, attn, N, out);
}

}  // namespace ug
