// CPU element-wise and attention ops of the Gemma 4 decoder (f32 activations). These straightforward
// loops are also the reference the CUDA backend is tested against. Matmul lives in matmul.h.
#pragma once

#include <cstdint>
#include <span>

#include "core/tensor.h"
#include "core/thread_pool.h"

namespace ug::cpu {

// x[rows, n] <- x * (mean(x^2) + eps)^-1/2 * w   (w = nullptr: no scale). In place; mean in double.
void rms_norm(float* x, int64_t rows, int64_t n, const float* w, double eps);
// out = rms_norm(x) (not in place).
void rms_norm_to(const float* x, float* out, int64_t rows, int64_t n, const float* w, double eps);

// x[rows, n] -> LayerNorm(x) * w + b (biased variance, as torch.nn.LayerNorm); statistics in double.
void layer_norm_to(const float* x, float* out, int64_t rows, int64_t n, const float* w, const float* b, double eps);

// Rotate-half RoPE on x[n_tokens, n_heads, head_dim] with per-token positions. inv_freq has head_dim/2
// entries (zeros for pairs that do not rotate, as in "proportional" RoPE).
void rope(float* x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, std::span<const int64_t> positions,
          std::span<const float> inv_freq);

// out[i] = gelu_tanh(gate[i]) * up[i]
void gelu_tanh_mul(const float* gate, const float* up, float* out, int64_t n);

// logits <- cap * tanh(logits / cap)
void softcap(float* logits, int64_t n, float cap);

// Copies row `id` of an embedding matrix (f32 or bf16) into out[cols] as f32, times `scale`.
void embedding_row(const MatrixRef& table, int64_t id, float scale, float* out);

// Where the keys of one attention call live: positions < chunk_start are in a cache (ring buffer of
// `ring_capacity` slots indexed pos % capacity, or a linear buffer when ring_capacity == 0); positions
// >= chunk_start are the chunk's own fresh keys/values. Layout of every buffer: [pos, n_kv_heads, head_dim].
struct AttentionParams {
  const float* q;              // [n_q, n_heads, head_dim] (post norm + rope)
  float* out;                  // [n_q, n_heads, head_dim]
  int64_t n_q;                 // queries in this chunk, at positions chunk_start .. chunk_start + n_q - 1
  int64_t chunk_start;
  int64_t n_heads;
  int64_t n_kv_heads;
  int64_t head_dim;
  int64_t window;              // sliding window W (key allowed iff q - k < W); 0 = full attention
  const float* cache_k;        // keys/values before chunk_start
  const float* cache_v;
  int64_t ring_capacity;       // 0: linear cache indexed by absolute position
  const float* chunk_k;        // [n_q, n_kv_heads, head_dim]
  const float* chunk_v;
  const int32_t* block_ids;    // [n_q] or nullptr; same id >= 0: bidirectional inside the block (sliding layers)
  float scale;                 // score multiplier (Gemma 4: 1.0)
};
// Causal (+ window, + bidirectional blocks) softmax attention, softmax in f32 with max subtraction.
void attention(const AttentionParams& p, ThreadPool& pool);
// Several independent attention calls (one per sequence of a batch) in one parallel loop over all their
// (query, head) pairs; each result is bitwise what attention() gives for it alone.
void attention_batch(std::span<const AttentionParams> calls, ThreadPool& pool);

}  // namespace ug::cpu
