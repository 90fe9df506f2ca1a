// The multimodal embedders on the GPU (model_cuda/cuda_media_embedder.h) vs their CPU oracles (model/embedders.h) on
// the fixture model's bf16 weights: HF-preprocessed images (70 patches each) and audio frames, a random image at an
// odd patch count with positions anywhere in the table; and the same located errors. Skips without a GPU.
#include "model_cuda/cuda_media_embedder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "core/thread_pool.h"
#include "cuda/cuda_test_util.h"
#include "io/npy.h"
#include "model/embedders.h"
#include "model/image_audio_fixture.h"
#include "model/loaded_model.h"
#include "test_util.h"

namespace ug {
namespace {

class CudaMediaEmbedder : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda::device_available()) GTEST_SKIP() << "no CUDA device";
    model_ = load_model(test::data_path("tiny_kv_eq/model-bf16"), {.weight_dtype = DType::BF16});
    gpu_ = make_cuda_media_embedder(model_->config, *model_->weights);
  }
  // Both embedders agree within 2e-4 of the rows' scale: bf16 weights exact on both, f32-faithful GEMMs (two-term
  // activations) and double-accumulated norms; only the summation order differs.
  void expect_close(const std::vector<float>& gpu, const std::vector<float>& cpu, const char* what) {
    ASSERT_EQ(gpu.size(), cpu.size()) << what;
    float scale = 0, worst = 0;
    for (float x : cpu) scale = std::max(scale, std::fabs(x));
    for (size_t i = 0; i < cpu.size(); ++i) worst = std::max(worst, std::fabs(gpu[i] - cpu[i]));
    EXPECT_GT(scale, 0.0f) << what;
    EXPECT_LE(worst, 2e-4f * scale) << what << ": |rows| up to " << scale;
  }
  std::unique_ptr<LoadedModel> model_;
  std::unique_ptr<MediaEmbedder> gpu_;
};

TEST_F(CudaMediaEmbedder, ImageRowsMatchTheCpu) {
  ThreadPool& pool = ThreadPool::global();
  for (const char* name : {"gradient.png.70", "noise.jpg.70"}) {
    const ImagePatches p = test::load_patches(name);
    expect_close(gpu_->image(p), embed_image(model_->config, *model_->weights, p, pool), name);
  }
  const VisionConfig& vc = *model_->config.vision;
  std::mt19937 rng(4);
  std::uniform_int_distribution<int32_t> pos(0, int32_t(vc.mm_posemb_size) - 1);
  ImagePatches p;
  p.pixels = cuda::test::random_floats(size_t(37 * vc.patch_values()), 8, 0.0f, 1.0f);
  for (int i = 0; i < 37; ++i) {
    p.xs.push_back(pos(rng));
    p.ys.push_back(pos(rng));
  }
  expect_close(gpu_->image(p), embed_image(model_->config, *model_->weights, p, pool), "37 random patches");
  EXPECT_TRUE(gpu_->image(ImagePatches{}).empty());
}

TEST_F(CudaMediaEmbedder, AudioRowsMatchTheCpu) {
  auto frames = npy_as_f32(read_npy(test::data_path("preprocess/tone_16k.frames.npy")));
  expect_close(gpu_->audio(frames), embed_audio(model_->config, *model_->weights, frames, ThreadPool::global()),
               "tone_16k");
}

TEST_F(CudaMediaEmbedder, BadInputsAreTheCpuErrors) {
  ImagePatches p = test::load_patches("gradient.png.70");
  p.xs[3] = int32_t(model_->config.vision->mm_posemb_size);
  EXPECT_NE(cuda::test::error_of([&] { gpu_->image(p); }).find("patch 3 at"), std::string::npos);
  p.pixels.pop_back();
  EXPECT_NE(
      cuda::test::error_of([&] { gpu_->image(p); }).find("pixel values for " + std::to_string(p.count()) + " patches"),
      std::string::npos);
  const std::vector<float> odd(static_cast<size_t>(model_->config.audio->audio_embed_dim + 1), 0.5f);
  EXPECT_NE(cuda::test::error_of([&] { gpu_->audio(odd); }).find("not a whole number"), std::string::npos);
}

}  // namespace
}  // namespace ug
