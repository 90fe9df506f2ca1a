// Which weight a LayerMatrix / NormWeight names, written once for every backend's weight structs: the
// host's DecoderLayerWeights (model/weights.h) and the CUDA backend's DeviceLayer share HF's member names
// (attn.{q,k,v,o}_proj, attn.{q,k}_norm, mlp.{gate,up,down}_proj, {input,post_attention,...}_layernorm).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "model/decoder_backend.h"

namespace ug {

// The matrix m of one decoder layer (Layer: a struct with HF's member names).
template <class Layer>
const auto& layer_matrix(const Layer& layer, LayerMatrix m) {
  switch (m) {
    case LayerMatrix::Q:
      return layer.attn.q_proj;
    case LayerMatrix::K:
      return layer.attn.k_proj;
    case LayerMatrix::V:
      return layer.attn.v_proj;
    case LayerMatrix::O:
      return layer.attn.o_proj;
    case LayerMatrix::Gate:
      return layer.mlp.gate_proj;
    case LayerMatrix::Up:
      return layer.mlp.up_proj;
    case LayerMatrix::Down:
      return layer.mlp.down_proj;
  }
  fail("unknown layer matrix {}", int(m));
}

// The scale vector of norm w as the backend's f32 pointer: nullptr for NormWeight::None, final_norm for Final
// (neither reads layers), else that vector of layers[layer]. Vectors are anything with .data().
template <class Layers, class Vector>
const float* norm_scale(const Layers& layers, const Vector& final_norm, NormWeight w, int64_t layer) {
  if (w == NormWeight::None) return nullptr;
  if (w == NormWeight::Final) return final_norm.data();
  const auto& l = layers[size_t(layer)];
  switch (w) {
    case NormWeight::Input:
      return l.input_layernorm.data();
    case NormWeight::PostAttention:
      return l.post_attention_layernorm.data();
    case NormWeight::PreFeedforward:
      return l.pre_feedforward_layernorm.data();
    case NormWeight::PostFeedforward:
      return l.post_feedforward_layernorm.data();
    case NormWeight::QNorm:
      return l.attn.q_norm.data();
    case NormWeight::KNorm:
      return l.attn.k_norm.data();
    default:
      fail("unknown norm weight {}", int(w));
  }
}

}  // namespace ug
