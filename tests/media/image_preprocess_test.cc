// Image preprocessing vs HF Gemma4UnifiedImageProcessor (fixtures in tests/data/preprocess).
#include "media/image_preprocess.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <random>

#include "core/error.h"
#include "io/npy.h"
#include "test_util.h"

namespace ug {
namespace {

// Verified examples of spec §4.1 (H x W -> H' x W').
TEST(SoftTokenSize, MatchesHFExamples) {
  struct Ex {
    int64_t h, w, budget, oh, ow;
  };
  for (Ex e : {Ex{1024, 1024, 280, 768, 768}, Ex{224, 224, 280, 768, 768}, Ex{480, 640, 280, 672, 912},
               Ex{1080, 1920, 280, 576, 1056}, Ex{100, 3000, 280, 144, 4368}, Ex{1080, 1920, 70, 288, 528},
               Ex{1024, 1024, 1120, 1584, 1584}, Ex{240, 320, 70, 336, 432}, Ex{240, 320, 280, 672, 912}}) {
    ImageSize s = soft_token_size({e.h, e.w}, e.budget);
    EXPECT_EQ(s.height, e.oh) << e.h << "x" << e.w << "@" << e.budget;
    EXPECT_EQ(s.width, e.ow) << e.h << "x" << e.w << "@" << e.budget;
  }
  ImageSize thin = soft_token_size({1, 5000}, 70);  // a 1-pixel-high strip: one row of patches
  EXPECT_EQ(thin.height, 48);
  EXPECT_EQ(thin.width, 70 * 48);
  EXPECT_THROW(soft_token_size({0, 10}, 280), Error);
}

class NoiseJpeg : public ::testing::TestWithParam<int> {};

// From the RGB that PIL decoded: patches and positions equal HF's exactly (the resize is PyTorch's
// fixed-point uint8 kernel, reproduced bit for bit).
TEST_P(NoiseJpeg, PatchesMatchHF) {
  const int budget = GetParam();
  auto rgb = read_npy(test::data_path("preprocess/noise.jpg.decoded_rgb.npy"));
  ASSERT_EQ(rgb.shape, (std::vector<int64_t>{240, 320, 3}));
  std::span<const uint8_t> px(reinterpret_cast<const uint8_t*>(rgb.bytes.data()), rgb.bytes.size());
  PatchGrid g = preprocess_image(px, {240, 320}, budget);
  std::string stem = "preprocess/noise.jpg." + std::to_string(budget);
  auto ref = read_npy(test::data_path(stem + ".patches_u8.npy"));
  auto pos = npy_as_i64(read_npy(test::data_path(stem + ".positions.npy")));
  ASSERT_EQ(ref.shape[0], g.count());
  ASSERT_EQ(ref.bytes.size(), g.pixels.size());
  size_t off_by_one = 0, worse = 0;
  for (size_t i = 0; i < g.pixels.size(); ++i) {
    int d = std::abs(int(g.pixels[i]) - int(uint8_t(ref.bytes[i])));
    off_by_one += d == 1;
    worse += d > 1;
  }
  EXPECT_EQ(worse, 0u);
  EXPECT_EQ(off_by_one, 0u) << "values that differ by 1";
  for (int64_t i = 0; i < g.count(); ++i) {
    EXPECT_EQ(g.xs[size_t(i)], pos[size_t(2 * i)]);
    EXPECT_EQ(g.ys[size_t(i)], pos[size_t(2 * i + 1)]);
  }
}

INSTANTIATE_TEST_SUITE_P(Budgets, NoiseJpeg, ::testing::Values(70, 280));

// Video frames use the image path at a 70-token budget; frames are sampled at floor(i * T / 32).
TEST(VideoFrames, SampledFramesMatchHF) {
  auto frames = read_npy(test::data_path("preprocess/video_frames_u8.npy"));
  ASSERT_EQ(frames.shape, (std::vector<int64_t>{40, 96, 128, 3}));
  auto indices = npy_as_i64(read_npy(test::data_path("preprocess/video.sampled_indices.npy")));
  ASSERT_EQ(indices.size(), 32u);
  for (int64_t i = 0; i < 32; ++i) EXPECT_EQ(indices[size_t(i)], i * 40 / 32);
  auto pos = npy_as_i64(read_npy(test::data_path("preprocess/video.70.positions.npy")));
  const size_t frame_bytes = 96 * 128 * 3;
  for (int k : {0, 17}) {
    const auto* px = reinterpret_cast<const uint8_t*>(frames.bytes.data()) + size_t(indices[size_t(k)]) * frame_bytes;
    PatchGrid g = preprocess_image({px, frame_bytes}, {96, 128}, 70);
    auto ref = read_npy(test::data_path("preprocess/video.70.frame" + std::to_string(k) + ".patches_u8.npy"));
    ASSERT_EQ(ref.bytes.size(), g.pixels.size()) << "frame " << k;
    EXPECT_EQ(0, std::memcmp(ref.bytes.data(), g.pixels.data(), g.pixels.size())) << "frame " << k;
    ASSERT_EQ(size_t(g.count()) * 2, pos.size());
    for (int64_t i = 0; i < g.count(); ++i) EXPECT_EQ(g.xs[size_t(i)], pos[size_t(2 * i)]);
  }
}

// Each pass split over a pool's threads gives the same bytes as one thread, for up- and downscaling in either
// direction and sizes that do not divide into the pool's ranges.
TEST(ImagePreprocess, ResizeOnAPoolEqualsOneThread) {
  std::mt19937 rng(7);
  ThreadPool pool(4);
  for (auto [in, out] : {std::pair<ImageSize, ImageSize>{{211, 157}, {48, 96}},
                         {{37, 301}, {144, 61}},
                         {{500, 333}, {500, 101}},
                         {{90, 90}, {193, 90}}}) {
    std::vector<uint8_t> rgb(size_t(in.height * in.width * 3));
    for (auto& b : rgb) b = uint8_t(rng());
    EXPECT_EQ(resize_bicubic_antialias(rgb, in, out, &pool), resize_bicubic_antialias(rgb, in, out))
        << in.width << "x" << in.height << " -> " << out.width << "x" << out.height;
  }
}

TEST(Resize, DownscaleKeepsAConstantImageConstant) {
  std::vector<uint8_t> flat(size_t(300 * 200 * 3), 77);
  auto out = resize_bicubic_antialias(flat, {200, 300}, {48, 96});
  for (uint8_t v : out) ASSERT_EQ(v, 77);
  EXPECT_THROW(resize_bicubic_antialias(flat, {200, 299}, {48, 96}), Error);
}

}  // namespace
}  // namespace ug
