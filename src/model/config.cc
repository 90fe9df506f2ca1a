#include "model/config.h"

#include <fmt/format.h>

#include <filesystem>

#include "core/error.h"
#include "core/mapped_file.h"
#include "model/json_reader.h"

namespace ug {
namespace {

RopeConfig parse_rope(const JsonReader& r) {
  RopeConfig rope;
  std::string type = r.get_string("rope_type", "default");
  if (type == "default") {
    rope.type = RopeType::Default;
  } else if (type == "proportional") {
    rope.type = RopeType::Proportional;
  } else {
    fail("{}: unsupported rope_type '{}' (supported: default, proportional)", r.where("rope_type"), type);
  }
  rope.theta = r.get_number("rope_theta", 10000.0);
  rope.partial_rotary_factor = r.get_number("partial_rotary_factor", 1.0);
  UG_CHECK(rope.theta > 0, "{}: must be > 0", r.where("rope_theta"));
  UG_CHECK(rope.partial_rotary_factor > 0 && rope.partial_rotary_factor <= 1, "{}: must be in (0, 1], got {}",
           r.where("partial_rotary_factor"), rope.partial_rotary_factor);
  UG_CHECK(rope.type == RopeType::Proportional || rope.partial_rotary_factor == 1.0,
           "{}: partial rotary with rope_type 'default' is not supported", r.where("partial_rotary_factor"));
  return rope;
}

std::vector<LayerKind> parse_layer_types(const JsonReader& t, int64_t n_layers) {
  std::vector<LayerKind> kinds;
  if (!t.has("layer_types")) {  // HF default: 5 sliding + 1 full, repeating; the last layer is full
    for (int64_t i = 0; i < n_layers; ++i)
      kinds.push_back((i + 1) % 6 == 0 || i == n_layers - 1 ? LayerKind::Full : LayerKind::Sliding);
    return kinds;
  }
  auto names = t.get_string_list("layer_types");
  UG_CHECK(int64_t(names.size()) == n_layers, "{}: has {} entries but num_hidden_layers is {}", t.where("layer_types"),
           names.size(), n_layers);
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == "sliding_attention") {
      kinds.push_back(LayerKind::Sliding);
    } else if (names[i] == "full_attention") {
      kinds.push_back(LayerKind::Full);
    } else {
      fail("{}[{}]: expected 'sliding_attention' or 'full_attention', got '{}'", t.where("layer_types"), i, names[i]);
    }
  }
  return kinds;
}

// Per-layer head_dim / kv heads: the newer `per_layer_config` form is authoritative when present;
// otherwise the flat `global_head_dim` / `num_global_key_value_heads` keys describe full layers.
void resolve_layer_shapes(const JsonReader& t, TextConfig& text) {
  int64_t head_dim = t.get_int("head_dim", 256);
  int64_t n_kv = t.get_int("num_key_value_heads", 4);
  bool k_eq_v = t.get_bool("attention_k_eq_v", false);
  int64_t global_head_dim = t.get_int("global_head_dim", 512);
  std::optional<int64_t> n_global_kv;
  if (t.has("num_global_key_value_heads")) n_global_kv = t.get_int("num_global_key_value_heads");
  auto per_layer = t.optional_child("per_layer_config");
  auto rope_params = t.optional_child("rope_parameters");

  for (int64_t i = 0; i < text.n_layers(); ++i) {
    LayerConfig& layer = text.layers[size_t(i)];
    bool full = layer.kind == LayerKind::Full;
    layer.head_dim = head_dim;
    layer.n_kv_heads = n_kv;
    if (per_layer) {
      std::string key = std::to_string(i);
      if (auto over = per_layer->optional_child(key)) {
        layer.head_dim = over->get_int("head_dim", head_dim);
        layer.n_kv_heads = over->get_int("num_key_value_heads", n_kv);
      }
    } else if (full) {
      layer.head_dim = global_head_dim;
      if (k_eq_v && n_global_kv) layer.n_kv_heads = *n_global_kv;
    }
    layer.has_v_proj = !(k_eq_v && full);
    const char* type_key = full ? "full_attention" : "sliding_attention";
    if (rope_params && rope_params->has(type_key)) {
      layer.rope = parse_rope(rope_params->child(type_key));
    } else if (rope_params && rope_params->has("rope_type")) {  // one shared rope dict
      layer.rope = parse_rope(*rope_params);
    } else {
      layer.rope = full ? RopeConfig{RopeType::Proportional, 1e6, 0.25} : RopeConfig{RopeType::Default, 1e4, 1.0};
    }
  }
}

void validate(const TextConfig& text, const JsonReader& t) {
  auto positive = [&](int64_t v, const char* key) {
    UG_CHECK(v > 0, "{}: must be a positive integer, got {}", t.where(key), v);
  };
  positive(text.vocab_size, "vocab_size");
  positive(text.hidden_size, "hidden_size");
  positive(text.intermediate_size, "intermediate_size");
  positive(text.n_heads, "num_attention_heads");
  positive(text.sliding_window, "sliding_window");
  positive(text.n_layers(), "num_hidden_layers");
  UG_CHECK(text.rms_norm_eps > 0, "{}: must be > 0", t.where("rms_norm_eps"));
  for (int64_t i = 0; i < text.n_layers(); ++i) {
    const auto& l = text.layers[size_t(i)];
    UG_CHECK(l.head_dim > 0 && l.head_dim % 2 == 0, "{}: layer {} head_dim must be positive and even, got {}",
             t.where("head_dim"), i, l.head_dim);
    UG_CHECK(l.n_kv_heads > 0 && text.n_heads % l.n_kv_heads == 0,
             "{}: layer {} has {} kv heads, which must divide num_attention_heads {}", t.where("num_key_value_heads"),
             i, l.n_kv_heads, text.n_heads);
  }
  if (text.final_logit_softcap)
    UG_CHECK(*text.final_logit_softcap > 0, "{}: must be > 0", t.where("final_logit_softcapping"));
}

TextConfig parse_text_config(const JsonReader& t) {
  TextConfig text;
  text.vocab_size = t.get_int("vocab_size", 262144);
  text.hidden_size = t.get_int("hidden_size", 2304);
  text.intermediate_size = t.get_int("intermediate_size", 9216);
  text.n_heads = t.get_int("num_attention_heads", 8);
  text.sliding_window = t.get_int("sliding_window", 1024);
  text.max_position_embeddings = t.get_int("max_position_embeddings", 262144);
  text.rms_norm_eps = t.get_number("rms_norm_eps", 1e-6);
  text.final_logit_softcap = t.get_optional_number("final_logit_softcapping");
  text.tie_word_embeddings = t.get_bool("tie_word_embeddings", true);
  text.pad_token_id = t.get_int("pad_token_id", 0);
  text.bos_token_id = t.get_int("bos_token_id", 2);
  if (t.has("eos_token_id")) text.eos_token_ids = t.get_int_list("eos_token_id");
  std::string act = t.get_string("hidden_activation", "gelu_pytorch_tanh");
  UG_CHECK(act == "gelu_pytorch_tanh", "{}: unsupported activation '{}' (supported: gelu_pytorch_tanh)",
           t.where("hidden_activation"), act);
  UG_CHECK(t.get_int("num_kv_shared_layers", 0) == 0, "{}: KV-shared layers are not supported",
           t.where("num_kv_shared_layers"));
  UG_CHECK(!t.get_bool("enable_moe_block", false), "{}: MoE blocks are not supported", t.where("enable_moe_block"));
  UG_CHECK(t.get_int("hidden_size_per_layer_input", 0) == 0, "{}: per-layer inputs are not supported",
           t.where("hidden_size_per_layer_input"));
  std::string bidir = t.get_string("use_bidirectional_attention", "vision");
  UG_CHECK(bidir == "vision", "{}: only 'vision' is supported, got '{}'", t.where("use_bidirectional_attention"),
           bidir);
  int64_t n_layers = t.get_int("num_hidden_layers", 30);
  UG_CHECK(n_layers > 0 && n_layers <= 4096, "{}: must be in [1, 4096], got {}", t.where("num_hidden_layers"),
           n_layers);
  auto kinds = parse_layer_types(t, n_layers);
  text.layers.resize(size_t(n_layers));
  for (size_t i = 0; i < kinds.size(); ++i) text.layers[i].kind = kinds[i];
  resolve_layer_shapes(t, text);
  validate(text, t);
  return text;
}

VisionConfig parse_vision_config(const JsonReader& v) {
  VisionConfig c;
  c.patch_size = v.get_int("patch_size", 16);
  c.pooling_kernel_size = v.get_int("pooling_kernel_size", 3);
  c.mm_embed_dim = v.get_int("mm_embed_dim", 3840);
  c.mm_posemb_size = v.get_int("mm_posemb_size", 1120);
  c.output_proj_dims = v.get_int("output_proj_dims", 3840);
  c.rms_norm_eps = v.get_number("rms_norm_eps", 1e-6);
  c.num_soft_tokens = v.get_int("num_soft_tokens", 280);
  for (auto [val, key] : {std::pair{c.patch_size, "patch_size"},
                          {c.pooling_kernel_size, "pooling_kernel_size"},
                          {c.mm_embed_dim, "mm_embed_dim"},
                          {c.mm_posemb_size, "mm_posemb_size"},
                          {c.output_proj_dims, "output_proj_dims"},
                          {c.num_soft_tokens, "num_soft_tokens"}})
    UG_CHECK(val > 0, "{}: must be a positive integer, got {}", v.where(key), val);
  if (v.has("model_patch_size"))
    UG_CHECK(v.get_int("model_patch_size") == c.model_patch_size(),
             "{}: {} is inconsistent with patch_size x pooling_kernel_size = {}", v.where("model_patch_size"),
             v.get_int("model_patch_size"), c.model_patch_size());
  return c;
}

AudioConfig parse_audio_config(const JsonReader& a) {
  AudioConfig c;
  c.audio_embed_dim = a.get_int("audio_embed_dim", 640);
  c.rms_norm_eps = a.get_number("rms_norm_eps", 1e-6);
  UG_CHECK(c.audio_embed_dim > 0, "{}: must be a positive integer", a.where("audio_embed_dim"));
  return c;
}

nlohmann::json parse_json_text(const std::string& text, const std::string& source) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: malformed JSON: {}", source, e.what());
  }
}

}  // namespace

ModelConfig parse_model_config(const std::string& json_text, const std::string& source) {
  nlohmann::json doc = parse_json_text(json_text, source);
  UG_CHECK(doc.is_object(), "{}: expected a JSON object at the top level", source);
  JsonReader root(doc, source);
  ModelConfig config;
  config.model_type = root.get_string("model_type", "gemma4_unified");
  // A text-only checkpoint (Gemma4UnifiedForCausalLM / *_text) keeps the text fields at the top level.
  bool text_only = config.model_type == "gemma4_unified_text";
  UG_CHECK(text_only || config.model_type == "gemma4_unified",
           "{}: model_type '{}' is not supported (expected gemma4_unified or gemma4_unified_text)",
           root.where("model_type"), config.model_type);
  config.text = parse_text_config(text_only ? root : root.child("text_config"));
  if (!text_only) {
    if (auto v = root.optional_child("vision_config")) config.vision = parse_vision_config(*v);
    if (auto a = root.optional_child("audio_config")) config.audio = parse_audio_config(*a);
    auto& tk = config.tokens;
    tk.boi = root.get_int("boi_token_id", tk.boi);
    tk.eoi = root.get_int("eoi_token_id", tk.eoi);
    tk.image = root.get_int("image_token_id", tk.image);
    tk.video = root.get_int("video_token_id", tk.video);
    tk.boa = root.get_int("boa_token_id", tk.boa);
    tk.eoa = root.get_int("eoa_token_index", root.get_int("eoa_token_id", tk.eoa));
    tk.audio = root.get_int("audio_token_id", tk.audio);
    if (root.has("eos_token_id")) config.text.eos_token_ids = root.get_int_list("eos_token_id");
    config.text.tie_word_embeddings = root.get_bool("tie_word_embeddings", config.text.tie_word_embeddings);
  }
  return config;
}

ModelConfig load_model_config(const std::string& path) { return parse_model_config(read_text_file(path), path); }

GenerationConfig parse_generation_config(const std::string& json_text, const std::string& source,
                                         const ModelConfig& model) {
  nlohmann::json doc = parse_json_text(json_text, source);
  UG_CHECK(doc.is_object(), "{}: expected a JSON object at the top level", source);
  JsonReader r(doc, source);
  GenerationConfig g;
  g.eos_token_ids = r.has("eos_token_id") ? r.get_int_list("eos_token_id") : model.text.eos_token_ids;
  if (r.has("suppress_tokens")) g.suppress_tokens = r.get_int_list("suppress_tokens");
  if (r.has("bos_token_id")) g.bos_token_id = r.get_int("bos_token_id");
  if (r.has("pad_token_id")) g.pad_token_id = r.get_int("pad_token_id");
  g.do_sample = r.get_bool("do_sample", false);
  g.temperature = r.get_optional_number("temperature");
  g.top_p = r.get_optional_number("top_p");
  g.min_p = r.get_optional_number("min_p");
  g.repetition_penalty = r.get_optional_number("repetition_penalty");
  if (r.has("top_k")) g.top_k = r.get_int("top_k");
  if (r.has("max_new_tokens")) g.max_new_tokens = r.get_int("max_new_tokens");
  for (auto id : g.eos_token_ids)
    UG_CHECK(id >= 0 && id < model.text.vocab_size, "{}: eos id {} outside the vocabulary [0, {})",
             r.where("eos_token_id"), id, model.text.vocab_size);
  for (auto id : g.suppress_tokens)
    UG_CHECK(id >= 0 && id < model.text.vocab_size, "{}: id {} outside the vocabulary [0, {})",
             r.where("suppress_tokens"), id, model.text.vocab_size);
  return g;
}

GenerationConfig load_generation_config(const std::string& path, const ModelConfig& model) {
  if (!std::filesystem::exists(path)) {
    GenerationConfig g;
    g.eos_token_ids = model.text.eos_token_ids;
    return g;
  }
  return parse_generation_config(read_text_file(path), path, model);
}

std::string describe(const ModelConfig& c) {
  int64_t n_full = 0;
  for (const auto& l : c.text.layers) n_full += l.kind == LayerKind::Full;
  return fmt::format("{}: {} layers ({} sliding W={}, {} full), hidden {}, mlp {}, {} heads, vocab {}{}{}",
                     c.model_type, c.text.n_layers(), c.text.n_layers() - n_full, c.text.sliding_window, n_full,
                     c.text.hidden_size, c.text.intermediate_size, c.text.n_heads, c.text.vocab_size,
                     c.vision ? ", vision" : "", c.audio ? ", audio" : "");
}

}  // namespace ug
