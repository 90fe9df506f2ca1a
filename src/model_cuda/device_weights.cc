#include "model_cuda/device_weights.h"

#include <algorithm>
#include <span>

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
  for (size_t i = 0; i < w.layers.size(); ++i) {
    const auto& l = w.layers[i];
    DeviceLayer d;
    d.attn.q_proj = upload(l.attn.q_proj, "self_attn.q_proj");
    d.attn.k_proj = upload(l.attn.k_proj, "self_attn.k_proj");
    if (l.attn.v_proj.data) d.attn.v_proj = upload(l.attn.v_proj, "self_attn.v_proj");
    d.attn.o_proj = upload(l.attn.o_proj, "self_attn.o_proj");
    d.mlp.gate_proj = upload(l.mlp.gate_proj, "mlp.gate_proj");
    d.mlp.up_proj = upload(l.mlp.up_proj, "mlp.up_proj");
    d.mlp.down_proj = upload(l.mlp.down_proj, "mlp.down_proj");
    d.input_layernorm = upload(l.input_layernorm);
    d.post_attention_layernorm = upload(l.post_attention_layernorm);
    d.pre_feedforward_layernorm = upload(l.pre_feedforward_layernorm);
    d.post_feedforward_layernorm = upload(l.post_feedforward_layernorm);
    d.attn.q_norm = upload(l.attn.q_norm);
    d.attn.k_norm = upload(l.attn.k_norm);
    d.inv_freq = upload(rope_inv_freq(config.text.layers[i]));
    layers_.push_back(std::move(d));
  }
}

DeviceMatrix DeviceWeights::upload(const MatrixRef& m, const char* what) {
  UG_CHECK(m.data != nullptr, "cuda weights: {} is missing", what);
  UG_CHECK(m.cols % 8 == 0, "cuda weights: {} has {} columns; the CUDA matmuls need a multiple of 8", what, m.cols);
  DeviceMatrix d{.data = DeviceBuffer<uint16_t>(size_t(m.rows * m.cols)), .rows = m.rows, .cols = m.cols};
  if (m.dtype == DType::BF16) {
    d.data.upload({static_cast<const uint16_t*>(m.data), size_t(m.rows * m.cols)});
  } else {
    UG_CHECK(m.dtype == DType::F32, "cuda weights: {} has dtype {}; expected BF16 or F32", what, dtype_name(m.dtype));
    // In chunks of ~8M values: keeps the host copy small for a 262k x 3840 embedding table.
    const auto* src = static_cast<const float*>(m.data);
    const int64_t total = m.rows * m.cols, chunk = int64_t(1) << 23;
    std::vector<uint16_t> part(size_t(std::min(total, chunk)));
    for (int64_t at = 0; at < total; at += chunk) {
      const int64_t n = std::min(chunk, total - at);
      for (int64_t i = 0; i < n; ++i) part[size_t(i)] = f32_to_bf16(src[at + i]);
      UG_CUDA_CHECK(cudaMemcpy(d.data.data() + at, part.data(), size_t(n) * 2, cudaMemcpyHostToDevice));
    }
  }
  bytes_ += d.data.bytes();
  return d;
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
