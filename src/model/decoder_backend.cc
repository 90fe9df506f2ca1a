// The reference order of the fused steps, from the primitive ops (backends that do not fuse them use these).
#include "model/decoder_backend.h"

namespace ug {

void DecoderBackend::residual_norm(const ResidualNorm& r, float* branch, float* h, float* x, int64_t rows,
                                   int64_t dim) {
  rms_norm(r.post, r.post_layer, branch, branch, rows, dim);
  add_scaled(h, branch, r.scale, rows * dim);
  if (x) rms_norm(r.next, r.next_layer, h, x, rows, dim);
}

void DecoderBackend::attention_inputs(int64_t layer, const AttentionShape& s, const float* x, float* q, float* k,
                                      float* v) {
  const int64_t N = s.rows, d = s.head_dim;
  matmul(LayerMatrix::Q, layer, x, N, q);
  matmul(LayerMatrix::K, layer, x, N, k);
  if (s.has_v_proj) {
    matmul(LayerMatrix::V, layer, x, N, v);
  } else {
    copy(k, v, N * s.kv_heads * d);  // k_eq_v: V is the raw K projection, before k_norm and RoPE
  }
  rms_norm(NormWeight::QNorm, layer, q, q, N * s.heads, d);
  rms_norm(NormWeight::KNorm, layer, k, k, N * s.kv_heads, d);
  rms_norm(NormWeight::None, layer, v, v, N * s.kv_heads, d);
  rope(layer, q, s.heads, d);
  rope(layer, k, s.kv_heads, d);
}

void DecoderBackend::feed_forward(int64_t layer, int64_t intermediate, const float* x, int64_t rows, float* out) {
  float* gate = scratch(Scratch::Gate, rows * intermediate);
  float* up = scratch(Scratch::Up, rows * intermediate);
  matmul(LayerMatrix::Gate, layer, x, rows, gate);
  matmul(LayerMatrix::Up, layer, x, rows, up);
  gelu_tanh_mul(gate, up, gate, rows * intermediate);
  matmul(LayerMatrix::Down, layer, gate, rows, out);
}

}  // namespace ug
