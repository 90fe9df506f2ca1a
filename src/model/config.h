// Gemma 4 Unified configuration, parsed and validated once from HF config.json into plain structs with
// per-layer vectors. Model code reads only these structs; no defaults live anywhere else.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ug {

enum class LayerKind { Sliding, Full };
enum class RopeType { Default, Proportional };

struct RopeConfig {
  RopeType type = RopeType::Default;
  double theta = 10000.0;
  double partial_rotary_factor = 1.0;  // proportional: fraction of the d/2 frequency pairs that rotate
};

// Everything a decoder layer needs to know about its own shape.
struct LayerConfig {
  LayerKind kind = LayerKind::Sliding;
  int64_t head_dim = 0;
  int64_t n_kv_heads = 0;
  bool has_v_proj = true;  // false: V is the raw K projection (attention_k_eq_v on full layers)
  RopeConfig rope;
};

struct TextConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t n_heads = 0;
  int64_t sliding_window = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  std::optional<double> final_logit_softcap;
  bool tie_word_embeddings = true;
  int64_t pad_token_id = 0;
  int64_t bos_token_id = 2;
  std::vector<int64_t> eos_token_ids{1};
  std::vector<LayerConfig> layers;

  int64_t n_layers() const { return int64_t(layers.size()); }
};

struct VisionConfig {
  int64_t patch_size = 16;
  int64_t pooling_kernel_size = 3;
  int64_t mm_embed_dim = 3840;
  int64_t mm_posemb_size = 1120;
  int64_t output_proj_dims = 3840;
  double rms_norm_eps = 1e-6;
  int64_t num_soft_tokens = 280;
  int64_t model_patch_size() const { return patch_size * pooling_kernel_size; }
  int64_t patch_values() const { return model_patch_size() * model_patch_size() * 3; }
};

struct AudioConfig {
  int64_t audio_embed_dim = 640;  // samples per audio token
  double rms_norm_eps = 1e-6;
};

// Token ids of the multimodal markers; read from config.json (test models use other ids).
struct MultimodalTokens {
  int64_t boi = 255999, eoi = 258882, image = 258880, video = 258884;
  int64_t boa = 256000, eoa = 258883, audio = 258881;
};

struct ModelConfig {
  std::string model_type;
  TextConfig text;
  std::optional<VisionConfig> vision;
  std::optional<AudioConfig> audio;
  MultimodalTokens tokens;
};

// generation_config.json: stop ids, suppressed ids and sampling defaults.
struct GenerationConfig {
  std::vector<int64_t> eos_token_ids;
  std::vector<int64_t> suppress_tokens;
  std::optional<int64_t> bos_token_id, pad_token_id;
  bool do_sample = false;
  std::optional<double> temperature, top_p, min_p, repetition_penalty;
  std::optional<int64_t> top_k, max_new_tokens;
};

// Parses a config.json document; `source` names the file in error messages.
ModelConfig parse_model_config(const std::string& json_text, const std::string& source);
ModelConfig load_model_config(const std::string& path);
// Missing file -> defaults derived from the model config (eos ids, no suppression).
GenerationConfig load_generation_config(const std::string& path, const ModelConfig& model);
GenerationConfig parse_generation_config(const std::string& json_text, const std::string& source,
                                         const ModelConfig& model);

std::string describe(const ModelConfig& config);  // one-paragraph human summary

}  // namespace ug
