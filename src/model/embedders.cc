#include "model/embedders.h"

#include "backend/cpu/matmul.h"
#include "backend/cpu/ops.h"
#include "core/error.h"

namespace ug {
namespace {
constexpr double kLayerNormEps = 1e-5;  // torch.nn.LayerNorm default, which HF uses here (spec §12.2)
}

std::vector<float> rescale_u8(std::span<const uint8_t> u8) {
  const float scale = 1.0f / 255.0f;
  std::vector<float> out(u8.size());
  for (size_t i = 0; i < u8.size(); ++i) out[i] = float(u8[i]) * scale;
  return out;
}

std::vector<float> rescale_u8_divide(std::span<const uint8_t> u8) {
  std::vector<float> out(u8.size());
  for (size_t i = 0; i < u8.size(); ++i) out[i] = (float(u8[i]) - 0.0f) / 255.0f;
  return out;
}

void check_image_patches(const ModelConfig& config, const ModelWeights& weights, const ImagePatches& image) {
  UG_CHECK(config.vision && weights.vision, "this model has no vision embedder (config.json has no vision_config)");
  const auto& vc = *config.vision;
  const int64_t n = image.count(), P = vc.patch_values();
  UG_CHECK(int64_t(image.pixels.size()) == n * P, "image: {} pixel values for {} patches of {}", image.pixels.size(), n,
           P);
  UG_CHECK(int64_t(image.ys.size()) == n, "image: {} y positions for {} patches", image.ys.size(), n);
  for (int64_t i = 0; i < n; ++i) {
    const int32_t x = image.xs[size_t(i)], y = image.ys[size_t(i)];
    UG_CHECK(x >= 0 && y >= 0 && x < vc.mm_posemb_size && y < vc.mm_posemb_size,
             "image: patch {} at ({}, {}) is outside the position table of {} entries per axis", i, x, y,
             vc.mm_posemb_size);
  }
}

int64_t check_audio_frames(const ModelConfig& config, const ModelWeights& weights, std::span<const float> frames) {
  UG_CHECK(config.audio && weights.audio, "this model has no audio embedder (config.json has no audio_config)");
  const int64_t F = config.audio->audio_embed_dim;
  UG_CHECK(int64_t(frames.size()) % F == 0, "audio: {} samples is not a whole number of {}-sample frames",
           frames.size(), F);
  return int64_t(frames.size()) / F;
}

std::vector<float> embed_image(const ModelConfig& config, const ModelWeights& weights, const ImagePatches& image,
                               ThreadPool& pool) {
  check_image_patches(config, weights, image);
  const auto& vc = *config.vision;
  const auto& w = *weights.vision;
  const int64_t n = image.count(), P = vc.patch_values(), E = vc.mm_embed_dim, D = config.text.hidden_size;
  std::vector<float> a(size_t(n * P)), b(size_t(n * E)), c(size_t(n * E));
  cpu::layer_norm_to(image.pixels.data(), a.data(), n, P, w.patch_ln1_w.data(), w.patch_ln1_b.data(), kLayerNormEps);
  cpu::matmul(a.data(), n, w.patch_dense, b.data(), pool);  // [n, E]
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < E; ++j) b[size_t(i * E + j)] += w.patch_dense_b[size_t(j)];
  cpu::layer_norm_to(b.data(), c.data(), n, E, w.patch_ln2_w.data(), w.patch_ln2_b.data(), kLayerNormEps);
  // Factorised 2-D position embedding: table rows are [position, axis] with axis 0 = x, 1 = y.
  std::vector<float> px(static_cast<size_t>(E)), py(static_cast<size_t>(E));
  for (int64_t i = 0; i < n; ++i) {
    const int32_t x = image.xs[size_t(i)], y = image.ys[size_t(i)];
    cpu::embedding_row(w.pos_embedding, int64_t(x) * 2 + 0, 1.0f, px.data());
    cpu::embedding_row(w.pos_embedding, int64_t(y) * 2 + 1, 1.0f, py.data());
    for (int64_t j = 0; j < E; ++j) c[size_t(i * E + j)] += px[size_t(j)] + py[size_t(j)];
  }
  cpu::layer_norm_to(c.data(), b.data(), n, E, w.pos_norm_w.data(), w.pos_norm_b.data(), kLayerNormEps);
  cpu::rms_norm(b.data(), n, E, nullptr, vc.rms_norm_eps);
  std::vector<float> out(size_t(n * D));
  cpu::matmul(b.data(), n, w.projection, out.data(), pool);
  return out;
}

std::vector<float> embed_audio(const ModelConfig& config, const ModelWeights& weights, std::span<const float> frames,
                               ThreadPool& pool) {
  const int64_t n = check_audio_frames(config, weights, frames);
  const int64_t F = config.audio->audio_embed_dim, D = config.text.hidden_size;
  std::vector<float> g(frames.begin(), frames.end()), out(size_t(n * D));
  cpu::rms_norm(g.data(), n, F, nullptr, config.audio->rms_norm_eps);
  cpu::matmul(g.data(), n, weights.audio->projection, out.data(), pool);
  return out;
}

namespace {

class CpuMediaEmbedder final : public MediaEmbedder {
 public:
  CpuMediaEmbedder(const ModelConfig& config, const ModelWeights& weights, ThreadPool& pool)
      : config_(config), weights_(weights), pool_(pool) {}
  std::vector<float> image(const ImagePatches& image) override { return embed_image(config_, weights_, image, pool_); }
  std::vector<float> audio(std::span<const float> frames) override {
    return embed_audio(config_, weights_, frames, pool_);
  }

 private:
  const ModelConfig& config_;
  const ModelWeights& weights_;
  ThreadPool& pool_;
};

}  // namespace

std::unique_ptr<MediaEmbedder> make_cpu_media_embedder(const ModelConfig& config, const ModelWeights& weights,
                                                       ThreadPool& pool) {
  return std::make_unique<CpuMediaEmbedder>(config, weights, pool);
}

std::vector<int32_t> block_ids_for(std::span<const int32_t> token_ids, const MultimodalTokens& tokens) {
  std::vector<int32_t> ids(token_ids.size(), -1);
  int32_t next = 0;
  for (size_t i = 0; i < token_ids.size(); ++i) {
    bool visual = token_ids[i] == tokens.image || token_ids[i] == tokens.video;
    if (!visual) continue;
    bool continues = i > 0 && ids[i - 1] >= 0;
    ids[i] = continues ? ids[i - 1] : next++;
  }
  return ids;
}

}  // namespace ug
