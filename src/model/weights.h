// Model weights bound by their HF names. BF16/F32 matrices are used in place from the memory-mapped
// checkpoint; small vectors (norm scales, layer_scalar) are converted to f32 once at load.
// All transformations happen here, never in the forward pass.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/huge_page_arena.h"
#include "core/tensor.h"
#include "io/checkpoint.h"
#include "model/config.h"

namespace ug {

struct AttentionWeights {
  MatrixRef q_proj;                   // [n_heads * head_dim, hidden]
  MatrixRef k_proj;                   // [n_kv_heads * head_dim, hidden]
  MatrixRef v_proj;                   // [n_kv_heads * head_dim, hidden]; data == nullptr when V = raw K (k_eq_v)
  MatrixRef o_proj;                   // [hidden, n_heads * head_dim]
  std::vector<float> q_norm, k_norm;  // [head_dim]
};

struct MlpWeights {
  MatrixRef gate_proj, up_proj;  // [intermediate, hidden]
  MatrixRef down_proj;           // [hidden, intermediate]
};

struct DecoderLayerWeights {
  std::vector<float> input_layernorm, post_attention_layernorm;  // [hidden]
  std::vector<float> pre_feedforward_layernorm, post_feedforward_layernorm;
  float layer_scalar = 1.0f;
  AttentionWeights attn;
  MlpWeights mlp;
};

struct VisionEmbedderWeights {
  std::vector<float> patch_ln1_w, patch_ln1_b;  // [patch_values]
  MatrixRef patch_dense;                        // [mm_embed_dim, patch_values]
  std::vector<float> patch_dense_b;             // [mm_embed_dim]
  std::vector<float> patch_ln2_w, patch_ln2_b;  // [mm_embed_dim]
  MatrixRef pos_embedding;                      // [mm_posemb_size * 2, mm_embed_dim] (x table rows 2i, y rows 2i+1)
  std::vector<float> pos_norm_w, pos_norm_b;    // [mm_embed_dim]
  MatrixRef projection;                         // [hidden, output_proj_dims]
};

struct AudioEmbedderWeights {
  MatrixRef projection;  // [hidden, audio_embed_dim]
};

// Where the big matrices live while the model runs.
enum class WeightResidency {
  Mapped,  // used in place from the memory-mapped checkpoint: no copy, instant start, least memory
  Copied,  // copied once into huge-page-backed memory: faster CPU decode (docs/perf.md)
};

struct WeightLoadOptions {
  // Precision the matrices are used at: nullopt = as stored (F16 is widened to F32). BF16 rounds an F32
  // checkpoint's weights (matrices and vectors) to bf16 values, like HF's bf16-weight model.
  std::optional<DType> weight_dtype;
  bool warn_unused = true;  // print tensors of the checkpoint that the model does not use
  WeightResidency residency = WeightResidency::Mapped;
};

class ModelWeights {
 public:
  static std::unique_ptr<ModelWeights> load(const Checkpoint& ckpt, const ModelConfig& config,
                                            const WeightLoadOptions& options = {});

  MatrixRef embed_tokens;  // [vocab, hidden]
  MatrixRef lm_head;       // == embed_tokens when tied
  std::vector<float> final_norm;
  std::vector<DecoderLayerWeights> layers;
  std::optional<VisionEmbedderWeights> vision;
  std::optional<AudioEmbedderWeights> audio;
  DType matrix_dtype = DType::BF16;  // dtype of the big matrices as used
  WeightResidency residency = WeightResidency::Mapped;

 private:
  friend class WeightBinder;
  std::vector<std::unique_ptr<std::byte[]>> owned_;  // converted copies (f16 -> f32, f32 -> bf16)
  HugePageArena arena_;                              // private copies (WeightResidency::Copied)
};

// Every tensor name (published spelling) and shape the config implies, in checkpoint order.
struct ExpectedTensor {
  std::string name;
  std::vector<int64_t> shape;
};
std::vector<ExpectedTensor> expected_tensors(const ModelConfig& config);

}  // namespace ug
