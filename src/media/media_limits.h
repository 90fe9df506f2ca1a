// Limits on untrusted media, checked before memory is committed (a PNG header can claim 100k x 100k pixels;
// a server sets these per deployment). Defaults suit a local CLI.
#pragma once

#include <cstdint>

namespace ug {

struct MediaLimits {
  int64_t max_file_bytes = int64_t(2) << 30;    // encoded input size
  int64_t max_image_pixels = 64'000'000;        // width * height of a decoded image or video frame
  int64_t max_image_side = 32'768;              // either side, in pixels
  double max_audio_seconds = 4.0 * 3600;        // decoded duration of one audio input
  double max_video_seconds = 4.0 * 3600;        // duration of one video input
  int64_t max_video_frames = 4'096;             // frames kept after sampling
};

}  // namespace ug
