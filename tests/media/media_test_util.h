// Helpers shared by the FFmpeg-backed media tests (audio_decode_test, video_decode_test).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/mapped_file.h"
#include "media/audio_decode.h"
#include "test_util.h"

namespace ug::test {

// A build without FFmpeg (UNIGEMMA_MEDIA_REQUIRED=OFF on a machine without it) skips the decoding tests.
inline bool ffmpeg_built_in() {
  try {
    decode_audio(std::vector<uint8_t>{0}, {}, "probe");
  } catch (const Error& e) {
    return std::string_view(e.what()).find("no FFmpeg support") == std::string_view::npos;
  }
  return true;
}

class FfmpegTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!ffmpeg_built_in()) GTEST_SKIP() << "built without FFmpeg";
  }
};

template <typename Param>
class FfmpegTestWithParam : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    if (!ffmpeg_built_in()) GTEST_SKIP() << "built without FFmpeg";
  }
};

inline std::vector<uint8_t> file_bytes(const std::string& rel) {
  MappedFile f(data_path(rel));
  const auto* p = reinterpret_cast<const uint8_t*>(f.data());
  return {p, p + f.size()};
}

}  // namespace ug::test
