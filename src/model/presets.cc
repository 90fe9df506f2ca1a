#include "model/presets.h"

#include "core/error.h"

namespace ug {
namespace {

using json = nlohmann::json;

json rope_parameters(double partial) {
  return {{"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 10000.0}}},
          {"full_attention",
           {{"rope_type", "proportional"}, {"partial_rotary_factor", partial}, {"rope_theta", 1000000.0}}}};
}

json layer_types(int n_layers) {
  json types = json::array();
  for (int i = 0; i < n_layers; ++i)
    types.push_back((i + 1) % 6 == 0 || i == n_layers - 1 ? "full_attention" : "sliding_attention");
  return types;
}

// The flat config.json form of the published checkpoint (spec §1), with the shape knobs exposed.
json unified_config(int hidden, int intermediate, int n_layers, int heads, int kv_heads, int head_dim,
                    int global_head_dim, int window, int mm_embed_dim, int posemb) {
  json text = {{"model_type", "gemma4_unified_text"},
               {"vocab_size", 262144},
               {"hidden_size", hidden},
               {"intermediate_size", intermediate},
               {"num_hidden_layers", n_layers},
               {"num_attention_heads", heads},
               {"num_key_value_heads", kv_heads},
               {"head_dim", head_dim},
               {"global_head_dim", global_head_dim},
               {"num_global_key_value_heads", 1},
               {"attention_k_eq_v", true},
               {"hidden_activation", "gelu_pytorch_tanh"},
               {"max_position_embeddings", 262144},
               {"rms_norm_eps", 1e-6},
               {"pad_token_id", 0},
               {"eos_token_id", 1},
               {"bos_token_id", 2},
               {"tie_word_embeddings", true},
               {"attention_bias", false},
               {"attention_dropout", 0.0},
               {"sliding_window", window},
               {"layer_types", layer_types(n_layers)},
               {"rope_parameters", rope_parameters(0.25)},
               {"final_logit_softcapping", 30.0},
               {"use_bidirectional_attention", "vision"},
               {"num_kv_shared_layers", 0},
               {"use_double_wide_mlp", false},
               {"vocab_size_per_layer_input", 262144},
               {"hidden_size_per_layer_input", 0},
               {"enable_moe_block", false},
               {"num_experts", nullptr},
               {"top_k_experts", nullptr},
               {"moe_intermediate_size", nullptr},
               {"use_cache", true},
               {"initializer_range", 0.02}};
  json vision = {{"model_type", "gemma4_unified_vision"},
                 {"patch_size", 16},
                 {"pooling_kernel_size", 3},
                 {"model_patch_size", 48},
                 {"mm_embed_dim", mm_embed_dim},
                 {"mm_posemb_size", posemb},
                 {"output_proj_dims", mm_embed_dim},
                 {"rms_norm_eps", 1e-6},
                 {"num_soft_tokens", 280},
                 {"initializer_range", 0.02}};
  json audio = {{"model_type", "gemma4_unified_audio"},
                {"audio_embed_dim", 640},
                {"hidden_size", 640},
                {"output_proj_dims", 640},
                {"audio_samples_per_token", 640},
                {"rms_norm_eps", 1e-6},
                {"initializer_range", 0.02}};
  return {{"architectures", {"Gemma4UnifiedForConditionalGeneration"}},
          {"model_type", "gemma4_unified"},
          {"text_config", text},
          {"vision_config", vision},
          {"audio_config", audio},
          {"boi_token_id", 255999},
          {"eoi_token_id", 258882},
          {"image_token_id", 258880},
          {"video_token_id", 258884},
          {"boa_token_id", 256000},
          {"eoa_token_index", 258883},
          {"audio_token_id", 258881},
          {"eos_token_id", {1, 106}},
          {"tie_word_embeddings", true},
          {"initializer_range", 0.02},
          {"dtype", "bfloat16"},
          {"transformers_version", "5.10.0.dev0"}};
}

// What the conversion script writes for the IT checkpoint (spec §1.5).
json it_generation_config() {
  return {{"bos_token_id", 2},
          {"pad_token_id", 0},
          {"eos_token_id", {1, 106, 50}},
          {"suppress_tokens", {258883, 258882}},
          {"do_sample", true},
          {"temperature", 1.0},
          {"top_k", 64},
          {"top_p", 0.95},
          {"transformers_version", "5.10.0.dev0"}};
}

std::vector<ModelPreset> make_presets() {
  return {
      {"gemma-4-12b", "the real Gemma 4 12B Unified shape (48 layers, hidden 3840; ~24 GB in bf16)",
       unified_config(3840, 15360, 48, 16, 8, 256, 512, 1024, 3840, 1120), it_generation_config()},
      {"bench-1.4b", "a 1.4B-parameter model of the same family (~2.8 GB bf16) for CPU bandwidth benchmarks",
       unified_config(2048, 8192, 14, 8, 4, 256, 512, 1024, 2048, 256), it_generation_config()},
      {"tiny", "a tiny model (hidden 64, 6 layers) with the real vocabulary and token ids (~35 MB)",
       unified_config(64, 128, 6, 4, 2, 16, 32, 8, 48, 64), it_generation_config()},
  };
}

}  // namespace

const std::vector<ModelPreset>& model_presets() {
  static const std::vector<ModelPreset> presets = make_presets();
  return presets;
}

const ModelPreset& find_preset(const std::string& name) {
  std::string known;
  for (const auto& p : model_presets()) {
    if (p.name == name) return p;
    known += (known.empty() ? "" : ", ") + p.name;
  }
  fail("unknown preset '{}' (known: {})", name, known);
}

}  // namespace ug
