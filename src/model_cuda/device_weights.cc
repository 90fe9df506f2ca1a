#include "model_cuda/device_weights.h"

#include <algorithm>
#include <span>

#include "backend/cuda/cuda_check.h"
#include "core/bf16.h"
#include "core/error.h"
#include "model/decoder.h"
#include "model/layer_weight_picker.h"

namespace ug::cuda {

DeviceWeights::DeviceWeights(const ModelConfig& config, const ModelWeights& w) {
  embed_ = upload(w.embed_tokens, "model.language_model.embed_tokens.weight");
  tied_ = w.lm_head.data == w.embed_tokens.data;
  if (!tied_) lm_head_ = upload(w.lm_head, "lm_head.weight");
  final_norm_ = upload(w.final_norm);
  std::vector<std::vector<float>> inv_freqs;  // of each rope kind, on the host
  for (size_t i = 0; i < w.layers.size(); ++i) {
    const auto& l = w.layers[i];
    DeviceLayer d;
    d.attn.qkv = upload_stacked({{&l.attn.q_proj, "self_attn.q_proj", &d.attn.q_proj},
                                 {&l.attn.k_proj, "self_attn.k_proj", &d.attn.k_proj},
                                 {l.attn.v_proj.data ? &l.attn.v_proj : nullptr, "self_attn.v_proj", &d.attn.v_proj}});
    d.attn.o_proj = upload(l.attn.o_proj, "self_attn.o_proj");
    d.mlp.gate_up = upload_stacked({{&l.mlp.gate_proj, "mlp.gate_proj", &d.mlp.gate_proj},
                                    {&l.mlp.up_proj, "mlp.up_proj", &d.mlp.up_proj}});
    d.mlp.down_proj = upload(l.mlp.down_proj, "mlp.down_proj");
    d.input_layernorm = upload(l.input_layernorm);
    d.post_attention_layernorm = upload(l.post_attention_layernorm);
    d.pre_feedforward_layernorm = upload(l.pre_feedforward_layernorm);
    d.post_feedforward_layernorm = upload(l.post_feedforward_layernorm);
    d.attn.q_norm = upload(l.attn.q_norm);
    d.attn.k_norm = upload(l.attn.k_norm);
    const std::vector<float> inv_freq = rope_inv_freq(config.text.layers[i]);
    const auto kind = std::find(inv_freqs.begin(), inv_freqs.end(), inv_freq);
    d.rope_kind = kind - inv_freqs.begin();
    if (kind == inv_freqs.end()) {
      inv_freqs.push_back(inv_freq);
      inv_freqs_.push_back(upload(inv_freq));
    }
    layers_.push_back(std::move(d));
  }
}

namespace {

void check_matrix(const MatrixRef& m, const char* what) {
  UG_CHECK(m.data != nullptr, "cuda weights: {} is missing", what);
  UG_CHECK(m.cols % 8 == 0, "cuda weights: {} has {} columns; the CUDA matmuls need a multiple of 8", what, m.cols);
  UG_CHECK(m.dtype == DType::BF16 || m.dtype == DType::F32, "cuda weights: {} has dtype {}; expected BF16 or F32",
           what, dtype_name(m.dtype));
}

// Copies m into dst as bf16 (an F32 matrix rounded to nearest even, in chunks of ~8M values: keeps the host copy
// small for a 262k x 3840 embedding table).
void upload_into(uint16_t* dst, const MatrixRef& m) {
  const int64_t total = m.rows * m.cols;
  if (m.dtype == DType::BF16) {
    UG_CUDA_CHECK(cudaMemcpy(dst, m.data, size_t(total) * 2, cudaMemcpyHostToDevice));
    return;
  }
  const auto* src = static_cast<const float*>(m.data);
  const int64_t chunk = int64_t(1) << 23;
  std::vector<uint16_t> part(size_t(std::min(total, chunk)));
  for (int64_t at = 0; at < total; at += chunk) {
    const int64_t n = std::min(chunk, total - at);
    for (int64_t i = 0; i < n; ++i) part[size_t(i)] = f32_to_bf16(src[at + i]);
    UG_CUDA_CHECK(cudaMemcpy(dst + at, part.data(), size_t(n) * 2, cudaMemcpyHostToDevice));
  }
}

}  // namespace

DeviceBuffer<uint16_t> upload_bf16(const MatrixRef& m, const char* what) {
  check_matrix(m, what);
  DeviceBuffer<uint16_t> buffer(size_t(m.rows * m.cols));
  upload_into(buffer.data(), m);
  return buffer;
}

DeviceMatrix DeviceWeights::upload(const MatrixRef& m, const char* what) {
  DeviceMatrix d;
  upload_stacked({{&m, what, &d}});
  return d;
}

DeviceMatrix DeviceWeights::upload_stacked(std::initializer_list<Part> parts) {
  int64_t rows = 0, cols = -1;
  for (const Part& p : parts) {
    if (!p.m) continue;
    check_matrix(*p.m, p.what);
    UG_CHECK(cols < 0 || p.m->cols == cols, "cuda weights: {} has {} columns, the matrices stacked with it {}",
             p.what, p.m->cols, cols);
    cols = p.m->cols;
    rows += p.m->rows;
  }
  DeviceBuffer<uint16_t>& buffer = storage_.emplace_back(size_t(rows * cols));
  bytes_ += buffer.bytes();
  int64_t at = 0;
  for (const Part& p : parts) {
    if (!p.m) continue;
    upload_into(buffer.data() + at * cols, *p.m);
    *p.view = {.data = buffer.data() + at * cols, .rows = p.m->rows, .cols = cols};
    at += p.m->rows;
  }
  return {.data = buffer.data(), .rows = rows, .cols = cols};
}

DeviceBuffer<float> DeviceWeights::upload(const std::vector<float>& v) {
  bytes_ += v.size() * sizeof(float);
  return DeviceBuffer<float>(std::span<const float>(v));
}

const DeviceMatrix& DeviceWeights::matrix(LayerMatrix m, int64_t layer) const {
  return layer_matrix(layers_[size_t(layer)], m);
}

const float* DeviceWeights::norm(NormWeight w, int64_t layer) const {
  return norm_scale(layers_, final_norm_, w, layer);
}

}  // namespace ug::cuda
