// The ops one decoder step needs, implemented once per backend: the model (model/decoder.cc) is
// written once against this interface; the CPU implementation is model/cpu_decoder_backend.cc, the
// CUDA one src/model_cuda/. No backend headers appear in model code.
//
// Activations are f32 [rows, cols] buffers that live where the backend computes (host memory on the
// CPU, device memory on CUDA). The decoder only passes them from op to op; it never reads them
// (taps go through to_host()). Weights are named by (layer, which): each backend holds them in its
// own form.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

namespace ug {

struct BatchItem;
class KvCache;
class KvStorage;

// The big matrices of a decoder layer (HF names: self_attn.{q,k,v,o}_proj,
// mlp.{gate,up,down}_proj).
enum class LayerMatrix { Q, K, V, O, Gate, Up, Down };

// Scale vectors of RMSNorms. Layer norms take a layer index; Final and None ignore it.
enum class NormWeight { Input, PostAttention, PreFeedforward, PostFeedforward, QNorm, KNorm, Final, None };

// Row layout of one batched step: rows of item i are [row0[i], row0[i] + n[i]) of every [N, ...]
// activation; start[i] is its cache size before the step (the position of its first row).
struct StepLayout {
  std::vector<int64_t> row0, n, start;
  std::vector<int64_t> positions;  // [N] absolute position of every row
  int64_t total = 0;               // N
};

// The candidates of a top-k sampler, found where the logits are (on the GPU: a few KB come back instead of the
// 1 MB row): every finite logit >= the row's k-th largest finite logit (all ties with it kept, as HF's top-k;
// every finite logit when there are fewer than k), skipping the excluded ids, ids ascending. When the candidates
// do not fit the backend's room (many ties at the boundary), `full` holds the whole row instead.
constexpr int32_t kMaxTopLogitsK = 1024;
struct TopLogits {
  int32_t k = 0;               // in: 1 .. kMaxTopLogitsK
  std::vector<int32_t> ids;    // out
  std::vector<float> values;   // out, values[i] is the logit of ids[i]
  std::vector<float> full;     // out: the whole row (then ids / values are empty), or empty
  bool bad = false;            // out: a considered logit is NaN or +inf (the sampler's error)
};

// One run of rows that needs logits: rows [row, row + count) of the final hidden state ->
// out[count, vocab].
struct LogitsRequest {
  int64_t row = 0;
  int64_t count = 0;
  float* out = nullptr;               // host memory; nullptr: not needed (argmax / top only)
  int32_t* argmax = nullptr;          // count == 1: the row's argmax (ties -> lowest id), or nullptr
  TopLogits* top = nullptr;           // count == 1: the row's top-k candidates, or nullptr
  std::span<const int32_t> excluded;  // ids the argmax and the top-k skip (a sampler's suppress_tokens)
};

// Index of the largest value, ties -> the lowest index (torch.argmax), skipping `excluded` ids; -1 when a
// considered value is NaN or +inf (the sampler's rule: such logits are an error). The reference for device
// argmaxes.
int32_t argmax_lowest(const float* x, int64_t n, std::span<const int32_t> excluded = {});

// The reference top-k candidates of x[n] (TopLogits above; never `full`). The oracle for device selections.
void select_top_logits(const float* x, int64_t n, std::span<const int32_t> excluded, TopLogits& top);

// What residual_norm does between two sublayers (see there).
struct ResidualNorm {
  NormWeight post = NormWeight::None;  // the branch's norm
  int64_t post_layer = 0;
  float scale = 1.0f;                  // layer_scalar after the MLP, 1 after attention
  NormWeight next = NormWeight::None;  // the next sublayer's input norm (when x is set)
  int64_t next_layer = 0;
};

// The attention geometry of one layer, for attention_inputs.
struct AttentionShape {
  int64_t rows = 0;  // N
  int64_t heads = 0, kv_heads = 0, head_dim = 0;
  bool has_v_proj = true;
};

// Named scratch activations of a step. A backend keeps one buffer per slot and reuses it across
// steps.
enum class Scratch { Hidden, Normed, Branch, Q, K, V, Attn, Gate, Up, Count };

class DecoderBackend {
 public:
  virtual ~DecoderBackend() = default;
  virtual std::string_view name() const = 0;

  // Storage for a new KV cache of this backend (nullptr: the cache keeps its rows in host memory,
  // which is what the CPU backend reads).
  virtual std::unique_ptr<KvStorage> new_kv_storage(int64_t ring_slack) = 0;

  // Free memory where this backend keeps KV caches (device memory), or -1 when that is host memory.
  virtual int64_t free_memory_bytes() const { return -1; }

  // Bytes per stored K or V value of this backend's caches (f32 on the CPU; bf16 or f32 on CUDA).
  virtual size_t kv_element_bytes() const { return sizeof(float); }

  // A buffer of at least `floats` elements for slot s, valid until the same slot is requested
  // again.
  virtual float* scratch(Scratch s, int64_t floats) = 0;

  // Called once per step before any op: the backend records the layout (positions for RoPE, block
  // ids, caches) and prepares each item's cache for its new rows.
  virtual void begin_step(std::span<const BatchItem> items, const StepLayout& layout) = 0;

  // h[N, hidden] <- token embeddings * scale, or the item's override rows (multimodal soft tokens)
  // unscaled.
  virtual void embed(std::span<const BatchItem> items, float scale, float* h) = 0;

  // out[rows, dim] = RMSNorm(x) * weight (NormWeight::None: no scale). out may equal x.
  virtual void rms_norm(NormWeight w, int64_t layer, const float* x, float* out, int64_t rows, int64_t dim) = 0;

  // h[i] = (h[i] + branch[i]) * scale for i < n.
  virtual void add_scaled(float* h, const float* branch, float scale, int64_t n) = 0;

  // y[rows, out] = x[rows, in] · Wᵀ with W the layer's matrix [out, in].
  virtual void matmul(LayerMatrix m, int64_t layer, const float* x, int64_t rows, float* y) = 0;

  virtual void copy(const float* src, float* dst, int64_t n) = 0;

  // Rotate-half RoPE in place on x[N, heads, head_dim] at the step's positions with the layer's
  // frequencies.
  virtual void rope(int64_t layer, float* x, int64_t heads, int64_t head_dim) = 0;

  // out[i] = gelu_tanh(gate[i]) * up[i]
  virtual void gelu_tanh_mul(const float* gate, const float* up, float* out, int64_t n) = 0;

  // Fused steps of a layer. Each default runs the primitive ops above in the reference order; a backend may
  // override one to fuse it (the CUDA backend: one kernel or matmul where the defaults run several).

  // The residual step between sublayers: branch <- RMSNorm_post(branch) (branch may be overwritten), h <- (h +
  // branch) * scale, then x <- RMSNorm_next(h) when x is set. h, branch, x: [rows, dim].
  virtual void residual_norm(const ResidualNorm& r, float* branch, float* h, float* x, int64_t rows, int64_t dim);

  // The attention inputs of a layer from x [N, hidden]: q [N, heads, d], k and v [N, kv_heads, d], projected,
  // normed (q_norm, k_norm, the weightless v norm; V is the raw K projection when the layer has no v_proj) and
  // rotated (q, k).
  virtual void attention_inputs(int64_t layer, const AttentionShape& s, const float* x, float* q, float* k, float* v);

  // out [rows, hidden] = down(gelu_tanh(gate(x)) * up(x)).
  virtual void feed_forward(int64_t layer, int64_t intermediate, const float* x, int64_t rows, float* out);

  // Attention of every item's rows of q [N, heads, head_dim] against its cache plus its own new k/v
  // [N, kv_heads, head_dim] (causal, the layer's window, bidirectional blocks on sliding layers),
  // into out [N, heads, head_dim]; then appends the new k/v rows to each item's cache for this
  // layer.
  virtual void attention(int64_t layer, const float* q, const float* k, const float* v, float* out) = 0;

  // The requested rows of h [N, hidden] -> lm_head -> final softcap -> host buffers.
  virtual void logits(const float* h, std::span<const LogitsRequest> requests) = 0;

  // Host view of rows of an activation (for hidden-state taps): `x` itself on the CPU, a copy
  // otherwise.
  virtual const float* to_host(const float* x, int64_t n, std::vector<float>& buffer) = 0;
};

}  // namespace ug
