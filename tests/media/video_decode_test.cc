// Video decoding (FFmpeg + libswscale) and frame sampling vs the HF fixtures in tests/data (the
// 40-frame 96x128 8 fps clip, losslessly in FFV1/MKV and lossy in MPEG-4 Part 2/MP4), and vs clips
// encoded here.
#include "media/video_decode.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/mapped_file.h"
#include "io/npy.h"
#include "media/av_test_encode.h"
#include "media/media_test_util.h"
#include "media/image_preprocess.h"
#include "test_util.h"

namespace ug {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

class VideoDecode : public test::FfmpegTest {};

template <typename Param>
using DecoderTestWithParam = test::FfmpegTestWithParam<Param>;
using test::file_bytes;

constexpr size_t kFixtureFrameBytes = 96 * 128 * 3;

const uint8_t* source_frame(const NpyArray& frames, int64_t index) {
  return reinterpret_cast<const uint8_t*>(frames.bytes.data()) + size_t(index) * kFixtureFrameBytes;
}

TEST(SampleFrameIndices, UniformIsHFs) {
  MediaLimits limits;
  auto idx = sample_frame_indices(40, 8, {}, limits);
  ASSERT_EQ(idx.size(), 32u);
  for (int64_t i = 0; i < 32; ++i) EXPECT_EQ(idx[size_t(i)], i * 40 / 32);
  EXPECT_THAT(sample_frame_indices(10, 8, {.num_frames = 3}, limits), ElementsAreArray({0, 3, 6}));
  EXPECT_THAT(sample_frame_indices(5, 8, {}, limits),
              ElementsAreArray({0, 1, 2, 3, 4}));  // fewer than 32: all
  limits.max_video_frames = 16;
  EXPECT_THROW(sample_frame_indices(40, 8, {}, limits), Error);
  EXPECT_THAT(sample_frame_indices(10, 8, {}, limits).size(), 10u);  // only 10 are kept
  EXPECT_THROW(sample_frame_indices(0, 8, {}, {}), Error);
  EXPECT_THROW(sample_frame_indices(10, 8, {.num_frames = 0}, {}), Error);
}

TEST(SampleFrameIndices, FpsModeAndCap) {
  EXPECT_THAT(sample_frame_indices(250, 25, {.fps = 1}, {}),
              ElementsAreArray({0, 25, 50, 75, 100, 125, 150, 175, 200, 225}));
  EXPECT_THAT(sample_frame_indices(100, 25, {.fps = 2}, {}),
              ElementsAreArray({0, 12, 25, 37, 50, 62, 75, 87}));
  // NTSC rate: 2 fps of 30000/1001 is every 14.985 frames.
  EXPECT_THAT(sample_frame_indices(60, 30000.0 / 1001, {.fps = 2}, {}),
              ElementsAreArray({0, 14, 29, 44, 59}));
  // Faster than the stream: every frame once.
  EXPECT_THAT(sample_frame_indices(5, 8, {.fps = 30}, {}), ElementsAreArray({0, 1, 2, 3, 4}));
  // Too many: max_frames spread uniformly over the whole video.
  EXPECT_THAT(sample_frame_indices(250, 25, {.fps = 1, .max_frames = 4}, {}),
              ElementsAreArray({0, 62, 125, 187}));
  MediaLimits limits;
  limits.max_video_frames = 5;  // the limit caps max_frames too
  EXPECT_THAT(sample_frame_indices(250, 25, {.fps = 1, .max_frames = 8}, limits),
              ElementsAreArray({0, 50, 100, 150, 200}));
  EXPECT_THROW(sample_frame_indices(250, 0, {.fps = 1}, {}), Error);
}

// The lossless fixture: indices, count and rate as HF saw them, every sampled frame bit-exact
// against the source frames, and frames 0 and 17 through preprocess_image equal to HF's patches.
TEST_F(VideoDecode, Ffv1MatchesHF) {
  VideoFrames v = decode_video_file(test::data_path("media/video_ffv1.mkv"), {});
  EXPECT_EQ(v.total_frames, 40);
  EXPECT_EQ(v.stream_fps, 8.0);
  auto want = npy_as_i64(read_npy(test::data_path("preprocess/video.sampled_indices.npy")));
  ASSERT_EQ(v.indices, want);
  ASSERT_EQ(v.frames.size(), 32u);
  auto source = read_npy(test::data_path("preprocess/video_frames_u8.npy"));
  for (size_t k = 0; k < v.frames.size(); ++k) {
    EXPECT_EQ(v.timestamps[k], double(v.indices[k]) / 8);
    ASSERT_EQ(v.frames[k].size.height, 96);
    ASSERT_EQ(v.frames[k].size.width, 128);
    ASSERT_EQ(v.frames[k].rgb.size(), kFixtureFrameBytes);
    EXPECT_EQ(0, std::memcmp(v.frames[k].rgb.data(), source_frame(source, v.indices[k]),
                             kFixtureFrameBytes))
        << "frame " << k;
  }
  for (int k : {0, 17}) {
    PatchGrid g = preprocess_image(v.frames[size_t(k)].rgb, {96, 128}, 70);
    auto ref = read_npy(
        test::data_path("preprocess/video.70.frame" + std::to_string(k) + ".patches_u8.npy"));
    ASSERT_EQ(ref.bytes.size(), g.pixels.size()) << "frame " << k;
    EXPECT_EQ(0, std::memcmp(ref.bytes.data(), g.pixels.data(), g.pixels.size())) << "frame " << k;
  }
}

// The lossy MPEG-4 Part 2 copy: same sampling; pixels close to the source.
TEST_F(VideoDecode, Mp4vIsCloseToSource) {
  VideoFrames v = decode_video(file_bytes("media/video_mp4v.mp4"), {}, {}, "video_mp4v.mp4");
  EXPECT_EQ(v.total_frames, 40);
  EXPECT_EQ(v.stream_fps, 8.0);
  ASSERT_EQ(v.indices,
            npy_as_i64(read_npy(test::data_path("preprocess/video.sampled_indices.npy"))));
  auto source = read_npy(test::data_path("preprocess/video_frames_u8.npy"));
  int worst = 0;
  double sum = 0;
  for (size_t k = 0; k < v.frames.size(); ++k) {
    ASSERT_EQ(v.frames[k].rgb.size(), kFixtureFrameBytes);
    const uint8_t* src = source_frame(source, v.indices[k]);
    for (size_t i = 0; i < kFixtureFrameBytes; ++i) {
      const int d = std::abs(int(v.frames[k].rgb[i]) - int(src[i]));
      worst = std::max(worst, d);
      sum += d;
    }
  }
  const double mean = sum / double(v.frames.size() * kFixtureFrameBytes);
  std::printf("mp4v vs source: max |error| %d, mean |error| %.2f (of 255)\n", worst, mean);
  EXPECT_LT(mean, 4.0);
}

void expect_error(std::span<const uint8_t> bytes, const VideoSampling& s, const MediaLimits& limits,
                  const char* what, const char* problem) {
  try {
    VideoFrames v = decode_video(bytes, s, limits, what);
    ADD_FAILURE() << what << ": no error, " << v.frames.size() << " frames";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(what));
    EXPECT_THAT(e.what(), HasSubstr(problem));
  }
}

TEST_F(VideoDecode, BadInputsAndLimits) {
  expect_error({}, {}, {}, "nothing.mp4", "empty");
  std::vector<uint8_t> junk(5000);
  for (size_t i = 0; i < junk.size(); ++i) junk[i] = uint8_t(i * 2654435761u >> 13);
  expect_error(junk, {}, {}, "junk.mp4", "not a media file");
  expect_error(file_bytes("media/tone_16k_i16.wav"), {}, {}, "tone.wav", "no video stream");
  auto mkv = file_bytes("media/video_ffv1.mkv");
  auto mp4 = file_bytes("media/video_mp4v.mp4");
  expect_error(std::span(mp4).first(mp4.size() / 2), {}, {}, "half.mp4", "moov atom not found");
  expect_error(std::span(mkv).first(mkv.size() / 2), {}, {}, "half.mkv", "truncated");
  expect_error(std::span(mkv).first(mkv.size() * 9 / 10), {}, {}, "most.mkv", "truncated");
  MediaLimits limits;
  limits.max_image_pixels = 96 * 128 - 1;
  expect_error(mkv, {}, limits, "big.mkv", "max_image_pixels");
  limits = {};
  limits.max_image_side = 100;
  expect_error(mkv, {}, limits, "wide.mkv", "max_image_side");
  limits = {};
  limits.max_video_seconds = 4;  // the clip lasts 5 s
  expect_error(mkv, {}, limits, "long.mkv", "max_video_seconds");
  expect_error(mp4, {}, limits, "long.mp4", "max_video_seconds");
  limits = {};
  limits.max_video_frames = 16;
  expect_error(mkv, {}, limits, "many.mkv", "max_video_frames");
  limits.max_file_bytes = 1000;
  expect_error(mkv, {}, limits, "huge.mkv", "limit");
}

#if UG_TEST_HAVE_FFMPEG

// Frame k (< 256) is a flat colour that identifies it through lossy coding (red: k % 16, green: k /
// 16, in steps of 14) plus a small bright square that gives the codec some detail.
uint8_t red_of(int k) { return uint8_t(16 + (k % 16) * 14); }
uint8_t green_of(int k) { return uint8_t(16 + (k / 16) * 14); }

void coloured_frame(int k, std::vector<uint8_t>& rgb, int width) {
  for (size_t i = 0; i < rgb.size(); i += 3) {
    const size_t px = i / 3, x = px % size_t(width), y = px / size_t(width);
    const bool square = x >= 8 && x < 24 && y >= 8 && y < 24;
    rgb[i] = square ? 240 : red_of(k);
    rgb[i + 1] = square ? 240 : green_of(k);
    rgb[i + 2] = square ? 240 : 128;
  }
}

// The source frame whose colour a decoded frame carries (mean over a flat region), -1 when none is
// close.
int identify_frame(const RgbImage& img, int frames) {
  double r = 0, g = 0;
  int n = 0;
  for (int64_t y = 32; y < img.size.height - 4; ++y)
    for (int64_t x = 32; x < img.size.width - 4; ++x, ++n) {
      r += img.rgb[size_t((y * img.size.width + x) * 3)];
      g += img.rgb[size_t((y * img.size.width + x) * 3 + 1)];
    }
  r /= n;
  g /= n;
  for (int k = 0; k < frames; ++k)
    if (std::fabs(r - red_of(k)) < 5 && std::fabs(g - green_of(k)) < 5) return k;
  return -1;
}

std::vector<uint8_t> encode_clip(const test::VideoSpec& spec) {
  return test::encode_video(
      spec, [&](int k, std::vector<uint8_t>& rgb) { coloured_frame(k, rgb, spec.width); });
}

// A 10 s 25 fps clip sampled at 1 fps: 10 frames at 0, 25, ..., each the right picture. MKV has no
// frame count in its header, so this also counts packets.
TEST_F(VideoDecode, FpsModeOnGeneratedClip) {
  auto bytes = encode_clip({.frames = 250});
  VideoFrames v = decode_video(bytes, {.fps = 1}, {}, "clip.mkv");
  EXPECT_EQ(v.total_frames, 250);
  EXPECT_EQ(v.stream_fps, 25.0);
  EXPECT_THAT(v.indices, ElementsAreArray({0, 25, 50, 75, 100, 125, 150, 175, 200, 225}));
  ASSERT_EQ(v.frames.size(), 10u);
  for (size_t k = 0; k < v.frames.size(); ++k) {
    EXPECT_EQ(identify_frame(v.frames[k], 250), v.indices[k]) << "sample " << k;
    EXPECT_DOUBLE_EQ(v.timestamps[k], double(k));
  }
  v = decode_video(bytes, {.fps = 1, .max_frames = 4}, {}, "clip.mkv");
  EXPECT_THAT(v.indices, ElementsAreArray({0, 62, 125, 187}));
  for (size_t k = 0; k < v.frames.size(); ++k)
    EXPECT_EQ(identify_frame(v.frames[k], 250), v.indices[k]);
}

struct ContainerCase {
  const char* name;
  const char* container;
  const char* ext;
  const char* codec;
  AVPixelFormat pix_fmt;
};

class Containers : public DecoderTestWithParam<ContainerCase> {};

// Uniform sampling of a 40-frame clip in each container/codec: count, rate and the right pictures.
TEST_P(Containers, SamplesTheRightFrames) {
  const ContainerCase& c = GetParam();
  if (!test::have_encoder(c.codec)) GTEST_SKIP() << "no encoder " << c.codec;
  auto bytes = encode_clip({.container = c.container,
                            .ext = c.ext,
                            .codec = c.codec,
                            .pix_fmt = c.pix_fmt,
                            .fps = {10, 1},
                            .frames = 40});
  VideoFrames v = decode_video(bytes, {.num_frames = 8}, {}, c.name);
  EXPECT_EQ(v.total_frames, 40) << c.name;
  EXPECT_DOUBLE_EQ(v.stream_fps, 10.0) << c.name;
  EXPECT_THAT(v.indices, ElementsAreArray({0, 5, 10, 15, 20, 25, 30, 35}));
  ASSERT_EQ(v.frames.size(), 8u);
  for (size_t k = 0; k < v.frames.size(); ++k) {
    EXPECT_EQ(v.frames[k].size.width, 64);
    EXPECT_EQ(v.frames[k].size.height, 48);
    EXPECT_EQ(identify_frame(v.frames[k], 40), v.indices[k]) << c.name << " sample " << k;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Formats, Containers,
    ::testing::Values(ContainerCase{"mpeg4_mkv", "matroska", "mkv", "mpeg4", AV_PIX_FMT_YUV420P},
                      ContainerCase{"mpeg4_mp4", "mp4", "mp4", "mpeg4", AV_PIX_FMT_YUV420P},
                      ContainerCase{"vp8_webm", "webm", "webm", "libvpx", AV_PIX_FMT_YUV420P},
                      ContainerCase{"mjpeg_mov", "mov", "mov", "mjpeg", AV_PIX_FMT_YUVJ420P},
                      ContainerCase{"h264_mov", "mov", "mov", "libx264", AV_PIX_FMT_YUV420P},
                      ContainerCase{"ffv1_mkv", "matroska", "mkv", "ffv1", AV_PIX_FMT_BGR0}),
    [](const auto& info) { return std::string(info.param.name); });

// A lossless RGB round trip through FFV1 (BGR0, as the fixture's BGRA) is exact.
TEST_F(VideoDecode, Ffv1RgbIsExact) {
  test::VideoSpec spec{.codec = "ffv1", .pix_fmt = AV_PIX_FMT_BGR0, .frames = 3};
  std::vector<uint8_t> want(size_t(spec.width * spec.height * 3));
  auto bytes = test::encode_video(spec, [&](int k, std::vector<uint8_t>& rgb) {
    for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = uint8_t(i * 7 + k * 13);
  });
  VideoFrames v = decode_video(bytes, {}, {}, "rgb.mkv");
  ASSERT_EQ(v.frames.size(), 3u);
  for (int k = 0; k < 3; ++k)
    for (size_t i = 0; i < want.size(); ++i)
      ASSERT_EQ(v.frames[size_t(k)].rgb[i], uint8_t(i * 7 + k * 13));
}

#endif  // UG_TEST_HAVE_FFMPEG

}  // namespace
}  // namespace ug
