// The model's weights in device memory, in the form the CUDA backend computes with: every matrix
// bf16 (an F32 checkpoint is rounded to nearest even at upload, as WeightLoadOptions::weight_dtype
// BF16 does on the CPU), every norm vector f32, RoPE frequencies per layer. Uploaded once at load.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "backend/cuda/device_buffer.h"
#include "model/config.h"
#include "model/decoder_backend.h"
#include "model/weights.h"

namespace ug::cuda {

// A view of a bf16 matrix [rows, cols] in device memory owned by DeviceWeights.
struct DeviceMatrix {
  const uint16_t* data = nullptr;
  int64_t rows = 0, cols = 0;
};

// DeviceLayer mirrors DecoderLayerWeights' member names (HF's), so model/layer_weight_picker.h picks
// a LayerMatrix / NormWeight from both. q_proj, k_proj and v_proj are views of consecutive rows of qkv (one
// matmul per layer computes all three); gate_proj and up_proj likewise of gate_up.
struct DeviceAttention {
  DeviceMatrix qkv;                             // [q rows; k rows; v rows]
  DeviceMatrix q_proj, k_proj, v_proj, o_proj;  // v_proj empty when V = raw K (k_eq_v)
  DeviceBuffer<float> q_norm, k_norm;
};

struct DeviceMlp {
  DeviceMatrix gate_up;  // [gate rows; up rows]
  DeviceMatrix gate_proj, up_proj, down_proj;
};

struct DeviceLayer {
  DeviceBuffer<float> input_layernorm, post_attention_layernorm;
  DeviceBuffer<float> pre_feedforward_layernorm, post_feedforward_layernorm;
  DeviceAttention attn;
  DeviceMlp mlp;
  int64_t rope_kind = 0;  // index of its inv_freq among the model's distinct ones
};

// m as a bf16 matrix in device memory (an F32 one rounded to nearest even); errors name it as `what`.
DeviceBuffer<uint16_t> upload_bf16(const MatrixRef& m, const char* what);

class DeviceWeights {
 public:
  DeviceWeights(const ModelConfig& config, const ModelWeights& weights);

  const DeviceMatrix& matrix(LayerMatrix m, int64_t layer) const;
  const DeviceMatrix& qkv(int64_t layer) const { return layers_[size_t(layer)].attn.qkv; }
  const DeviceMatrix& gate_up(int64_t layer) const { return layers_[size_t(layer)].mlp.gate_up; }
  const float* norm(NormWeight w, int64_t layer) const;  // nullptr for NormWeight::None
  // RoPE's inverse frequencies ([head_dim / 2]); layers with the same ones share a rope kind (and the step's
  // cos / sin table).
  const float* inv_freq(int64_t layer) const { return inv_freqs_[size_t(rope_kind(layer))].data(); }
  int64_t rope_kind(int64_t layer) const { return layers_[size_t(layer)].rope_kind; }
  int64_t rope_kinds() const { return int64_t(inv_freqs_.size()); }
  const DeviceMatrix& embed_tokens() const { return embed_; }
  const DeviceMatrix& lm_head() const { return tied_ ? embed_ : lm_head_; }
  size_t bytes() const { return bytes_; }

 private:
  struct Part {
    const MatrixRef* m;  // nullptr: skipped (an absent v_proj)
    const char* what;
    DeviceMatrix* view;
  };
  // Uploads the parts as consecutive rows of one allocation (equal column counts); returns the whole.
  DeviceMatrix upload_stacked(std::initializer_list<Part> parts);
  DeviceMatrix upload(const MatrixRef& m, const char* what);
  DeviceBuffer<float> upload(const std::vector<float>& v);
  std::vector<DeviceBuffer<uint16_t>> storage_;

  std::vector<DeviceLayer> layers_;
  std::vector<DeviceBuffer<float>> inv_freqs_;  // per rope kind
  DeviceMatrix embed_, lm_head_;
  DeviceBuffer<float> final_norm_;
  bool tied_ = true;
  size_t bytes_ = 0;
};

}  // namespace ug::cuda
