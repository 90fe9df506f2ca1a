// The encoder-free multimodal front of Gemma 4 Unified (spec §4.2, §5.2): 48x48 pixel patches and
// 640-sample audio frames become decoder-width embeddings. No towers: a few norms and two projections.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/thread_pool.h"
#include "model/config.h"
#include "model/weights.h"

namespace ug {

// One image (or video frame) ready for the vision embedder: valid patches only.
struct ImagePatches {
  std::vector<float> pixels;    // [n, patch_values], (row, col, channel) order, values in [0, 1]
  std::vector<int32_t> xs, ys;  // [n] patch column / row in the resized grid
  int64_t count() const { return int64_t(xs.size()); }
};

// Pixel values as HF's image processor rescales them: float(u8) * float(1/255).
std::vector<float> rescale_u8(std::span<const uint8_t> u8);
// As HF's video processor does: its rescale is fused into normalize((x - 0) / 255), a division, which can
// differ from the image path by one ulp.
std::vector<float> rescale_u8_divide(std::span<const uint8_t> u8);

// [n, patch_values] -> [n, hidden]: LN(eps 1e-5) -> dense + bias -> LN -> + x/y position rows -> LN ->
// weightless RMSNorm -> projection.
std::vector<float> embed_image(const ModelConfig& config, const ModelWeights& weights, const ImagePatches& image,
                               ThreadPool& pool);

// [n_frames, audio_embed_dim] -> [n_frames, hidden]: weightless RMSNorm -> projection.
std::vector<float> embed_audio(const ModelConfig& config, const ModelWeights& weights, std::span<const float> frames,
                               ThreadPool& pool);

// Throws the embedders' located errors for an image that does not fit the model (no vision embedder, sizes, patch
// positions outside the position table); shared by every implementation.
void check_image_patches(const ModelConfig& config, const ModelWeights& weights, const ImagePatches& image);
// The same for audio frames; returns the number of frames.
int64_t check_audio_frames(const ModelConfig& config, const ModelWeights& weights, std::span<const float> frames);

// Where the embedders compute: the CPU functions above, or a backend's (model_cuda/cuda_media_embedder.h keeps the
// projections on the GPU). Same inputs, outputs and errors (the CUDA one also serializes its calls).
class MediaEmbedder {
 public:
  virtual ~MediaEmbedder() = default;
  virtual std::vector<float> image(const ImagePatches& image) = 0;
  virtual std::vector<float> audio(std::span<const float> frames) = 0;
};

// embed_image / embed_audio on the pool. config and weights must outlive it.
std::unique_ptr<MediaEmbedder> make_cpu_media_embedder(const ModelConfig& config, const ModelWeights& weights,
                                                       ThreadPool& pool);

// Bidirectional block id per token from the multimodal token types (spec §3.6): every maximal run of image
// or video soft tokens gets a fresh id 0, 1, ...; everything else -1.
std::vector<int32_t> block_ids_for(std::span<const int32_t> token_ids, const MultimodalTokens& tokens);

}  // namespace ug
