#include "model/weights.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdio>
#include <cstring>
#include <set>

#include "core/bf16.h"
#include "core/error.h"

namespace ug {
namespace {

const std::string kText = "model.language_model.";

std::string layer_prefix(int64_t i) { return fmt::format("{}layers.{}.", kText, i); }

// Published name -> HF in-memory spelling (transformers renames the vision embedder at load time).
std::string alias_of(const std::string& name) {
  const std::string pub = "model.vision_embedder.";
  if (name.rfind(pub, 0) == 0) return "model.embed_vision." + name.substr(pub.size());
  if (name == "model.embed_vision.embedding_projection.weight")
    return "model.embed_vision.multimodal_embedder.embedding_projection.weight";
  return {};
}

}  // namespace

std::vector<ExpectedTensor> expected_tensors(const ModelConfig& c) {
  const auto& t = c.text;
  const int64_t D = t.hidden_size, I = t.intermediate_size;
  std::vector<ExpectedTensor> out;
  out.push_back({kText + "embed_tokens.weight", {t.vocab_size, D}});
  for (int64_t i = 0; i < t.n_layers(); ++i) {
    const auto& l = t.layers[size_t(i)];
    const std::string p = layer_prefix(i);
    for (const char* n :
         {"input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"})
      out.push_back({p + n + ".weight", {D}});
    out.push_back({p + "layer_scalar", {1}});
    out.push_back({p + "self_attn.q_proj.weight", {t.n_heads * l.head_dim, D}});
    out.push_back({p + "self_attn.k_proj.weight", {l.n_kv_heads * l.head_dim, D}});
    if (l.has_v_proj) out.push_back({p + "self_attn.v_proj.weight", {l.n_kv_heads * l.head_dim, D}});
    out.push_back({p + "self_attn.o_proj.weight", {D, t.n_heads * l.head_dim}});
    out.push_back({p + "self_attn.q_norm.weight", {l.head_dim}});
    out.push_back({p + "self_attn.k_norm.weight", {l.head_dim}});
    out.push_back({p + "mlp.gate_proj.weight", {I, D}});
    out.push_back({p + "mlp.up_proj.weight", {I, D}});
    out.push_back({p + "mlp.down_proj.weight", {D, I}});
  }
  out.push_back({kText + "norm.weight", {D}});
  if (!t.tie_word_embeddings) out.push_back({"lm_head.weight", {t.vocab_size, D}});
  if (c.vision) {
    const auto& v = *c.vision;
    const std::string p = "model.vision_embedder.";
    const int64_t P = v.patch_values(), E = v.mm_embed_dim;
    out.push_back({p + "patch_ln1.weight", {P}});
    out.push_back({p + "patch_ln1.bias", {P}});
    out.push_back({p + "patch_dense.weight", {E, P}});
    out.push_back({p + "patch_dense.bias", {E}});
    out.push_back({p + "patch_ln2.weight", {E}});
    out.push_back({p + "patch_ln2.bias", {E}});
    out.push_back({p + "pos_embedding", {v.mm_posemb_size, 2, E}});
    out.push_back({p + "pos_norm.weight", {E}});
    out.push_back({p + "pos_norm.bias", {E}});
    out.push_back({"model.embed_vision.embedding_projection.weight", {D, v.output_proj_dims}});
  }
  if (c.audio) out.push_back({"model.embed_audio.embedding_projection.weight", {D, c.audio->audio_embed_dim}});
  return out;
}

// Looks tensors up under either spelling, checks shape and dtype, converts where needed, and records
// which checkpoint tensors were used.
class WeightBinder {
 public:
  WeightBinder(const Checkpoint& ckpt, ModelWeights& w, const WeightLoadOptions& o) : ckpt_(ckpt), w_(w), opt_(o) {}

  const TensorInfo& find(const std::string& name, const std::vector<int64_t>& shape) {
    const TensorInfo* t = ckpt_.find(name);
    if (!t) {
      std::string alias = alias_of(name);
      if (!alias.empty()) t = ckpt_.find(alias);
    }
    if (!t)
      fail("{}: tensor '{}' not found (expected shape [{}]); is this a Gemma 4 Unified checkpoint of the same config?",
           ckpt_.dir(), name, fmt::join(shape, ", "));
    if (t->shape != shape)
      fail("{}: tensor '{}' has shape [{}], but config.json implies [{}]", t->file, t->name, fmt::join(t->shape, ", "),
           fmt::join(shape, ", "));
    if (t->dtype != DType::BF16 && t->dtype != DType::F32 && t->dtype != DType::F16)
      fail("{}: tensor '{}' has dtype {}; expected BF16, F16 or F32", t->file, t->name, dtype_name(t->dtype));
    used_.insert(t->name);
    return *t;
  }

  MatrixRef matrix(const std::string& name, int64_t rows, int64_t cols) {
    const TensorInfo& t = find(name, {rows, cols});
    return as_matrix(t, rows, cols);
  }

  MatrixRef matrix_any_shape(const std::string& name, const std::vector<int64_t>& shape, int64_t rows, int64_t cols) {
    return as_matrix(find(name, shape), rows, cols);
  }

  std::vector<float> vector(const std::string& name, int64_t n) { return to_f32(find(name, {n})); }

  std::vector<float> to_f32(const TensorInfo& t) {
    std::vector<float> v(size_t(t.numel()));
    const std::byte* src = t.data;
    for (size_t i = 0; i < v.size(); ++i) {
      uint16_t h;
      switch (t.dtype) {
        case DType::F32:
          std::memcpy(&v[i], src + 4 * i, 4);
          break;
        case DType::BF16:
          std::memcpy(&h, src + 2 * i, 2);
          v[i] = bf16_to_f32(h);
          break;
        default:
          std::memcpy(&h, src + 2 * i, 2);
          v[i] = f16_to_f32(h);
          break;
      }
      if (opt_.weight_dtype == DType::BF16) v[i] = round_to_bf16(v[i]);
    }
    return v;
  }

  void warn_unused() const {
    std::vector<std::string> unused;
    for (const auto& n : ckpt_.names())
      if (!used_.count(n)) unused.push_back(n);
    if (unused.empty()) return;
    std::fprintf(stderr, "warning: %s: %zu tensor(s) not used by the model, e.g. '%s'\n", ckpt_.dir().c_str(),
                 unused.size(), unused.front().c_str());
  }

 private:
  MatrixRef as_matrix(const TensorInfo& t, int64_t rows, int64_t cols) {
    bool want_bf16 = opt_.weight_dtype == DType::BF16;
    if (t.dtype == DType::BF16 || (t.dtype == DType::F32 && !want_bf16)) {
      if (opt_.residency == WeightResidency::Mapped) return {t.data, t.dtype, rows, cols};
      void* copy = w_.arena_.allocate(t.nbytes);
      std::memcpy(copy, t.data, t.nbytes);
      return {copy, t.dtype, rows, cols};
    }
    std::vector<float> f = to_f32(t);  // F16 (widened) or F32 rounded to bf16 values
    size_t n = f.size();
    if (want_bf16) {
      auto buf = std::make_unique<std::byte[]>(n * 2);
      auto* dst = reinterpret_cast<uint16_t*>(buf.get());
      for (size_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(f[i]);
      w_.owned_.push_back(std::move(buf));
      return {w_.owned_.back().get(), DType::BF16, rows, cols};
    }
    auto buf = std::make_unique<std::byte[]>(n * 4);
    std::memcpy(buf.get(), f.data(), n * 4);
    w_.owned_.push_back(std::move(buf));
    return {w_.owned_.back().get(), DType::F32, rows, cols};
  }

  const Checkpoint& ckpt_;
  ModelWeights& w_;
  const WeightLoadOptions& opt_;
  std::set<std::string> used_;
};

namespace {

DecoderLayerWeights bind_layer(WeightBinder& b, const TextConfig& t, int64_t i) {
  const auto& l = t.layers[size_t(i)];
  const std::string p = layer_prefix(i);
  const int64_t D = t.hidden_size, I = t.intermediate_size, q_dim = t.n_heads * l.head_dim,
                kv_dim = l.n_kv_heads * l.head_dim;
  DecoderLayerWeights w;
  w.input_layernorm = b.vector(p + "input_layernorm.weight", D);
  w.post_attention_layernorm = b.vector(p + "post_attention_layernorm.weight", D);
  w.pre_feedforward_layernorm = b.vector(p + "pre_feedforward_layernorm.weight", D);
  w.post_feedforward_layernorm = b.vector(p + "post_feedforward_layernorm.weight", D);
  w.layer_scalar = b.vector(p + "layer_scalar", 1)[0];
  w.attn.q_proj = b.matrix(p + "self_attn.q_proj.weight", q_dim, D);
  w.attn.k_proj = b.matrix(p + "self_attn.k_proj.weight", kv_dim, D);
  if (l.has_v_proj) w.attn.v_proj = b.matrix(p + "self_attn.v_proj.weight", kv_dim, D);
  w.attn.o_proj = b.matrix(p + "self_attn.o_proj.weight", D, q_dim);
  w.attn.q_norm = b.vector(p + "self_attn.q_norm.weight", l.head_dim);
  w.attn.k_norm = b.vector(p + "self_attn.k_norm.weight", l.head_dim);
  w.mlp.gate_proj = b.matrix(p + "mlp.gate_proj.weight", I, D);
  w.mlp.up_proj = b.matrix(p + "mlp.up_proj.weight", I, D);
  w.mlp.down_proj = b.matrix(p + "mlp.down_proj.weight", D, I);
  return w;
}

VisionEmbedderWeights bind_vision(WeightBinder& b, const VisionConfig& v, int64_t D) {
  const std::string p = "model.vision_embedder.";
  const int64_t P = v.patch_values(), E = v.mm_embed_dim;
  VisionEmbedderWeights w;
  w.patch_ln1_w = b.vector(p + "patch_ln1.weight", P);
  w.patch_ln1_b = b.vector(p + "patch_ln1.bias", P);
  w.patch_dense = b.matrix(p + "patch_dense.weight", E, P);
  w.patch_dense_b = b.vector(p + "patch_dense.bias", E);
  w.patch_ln2_w = b.vector(p + "patch_ln2.weight", E);
  w.patch_ln2_b = b.vector(p + "patch_ln2.bias", E);
  w.pos_embedding = b.matrix_any_shape(p + "pos_embedding", {v.mm_posemb_size, 2, E}, v.mm_posemb_size * 2, E);
  w.pos_norm_w = b.vector(p + "pos_norm.weight", E);
  w.pos_norm_b = b.vector(p + "pos_norm.bias", E);
  w.projection = b.matrix("model.embed_vision.embedding_projection.weight", D, v.output_proj_dims);
  return w;
}

}  // namespace

std::unique_ptr<ModelWeights> ModelWeights::load(const Checkpoint& ckpt, const ModelConfig& config,
                                                 const WeightLoadOptions& options) {
  auto w = std::unique_ptr<ModelWeights>(new ModelWeights());
  WeightBinder b(ckpt, *w, options);
  const auto& t = config.text;
  w->embed_tokens = b.matrix(kText + "embed_tokens.weight", t.vocab_size, t.hidden_size);
  w->lm_head = t.tie_word_embeddings ? w->embed_tokens : b.matrix("lm_head.weight", t.vocab_size, t.hidden_size);
  w->final_norm = b.vector(kText + "norm.weight", t.hidden_size);
  w->matrix_dtype = w->embed_tokens.dtype;
  w->residency = options.residency;
  for (int64_t i = 0; i < t.n_layers(); ++i) w->layers.push_back(bind_layer(b, t, i));
  if (config.vision) w->vision = bind_vision(b, *config.vision, t.hidden_size);
  if (config.audio)
    w->audio = AudioEmbedderWeights{
        b.matrix("model.embed_audio.embedding_projection.weight", t.hidden_size, config.audio->audio_embed_dim)};
  if (options.warn_unused) b.warn_unused();
  return w;
}

}  // namespace ug
