// libFuzzer target: the input is a whole image file (PNG, JPEG, WebP, GIF, BMP or anything else).
// It is decoded under tight limits, and an image that decodes is preprocessed at 70 soft tokens. A
// ug::Error is the expected outcome for bad input; any other exception, crash, sanitizer report or
// inconsistent result is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "core/error.h"
#include "media/image_decode.h"
#include "media/image_preprocess.h"

#if __has_include(<libavutil/log.h>)
extern "C" {
#include <libavutil/log.h>
}
#endif

extern "C" int LLVMFuzzerInitialize(int*, char***) {
#if __has_include(<libavutil/log.h>)
  av_log_set_level(AV_LOG_QUIET);  // the BMP decoder would print a line for every malformed input
#endif
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A copy in an exactly-sized heap block lets ASan catch any read past the end of the "file".
  std::vector<uint8_t> file(data, data + size);
  ug::MediaLimits limits;
  limits.max_file_bytes = 1 << 20;
  limits.max_image_pixels = 4'000'000;  // keeps each run fast and the memory small
  limits.max_image_side = 8192;
  try {
    ug::RgbImage img = ug::decode_image(file, limits, "fuzz image");
    const int64_t h = img.size.height, w = img.size.width;
    if (h <= 0 || w <= 0 || h * w > limits.max_image_pixels || img.rgb.size() != size_t(h * w * 3))
      std::abort();
    ug::PatchGrid g = ug::preprocess_image(img.rgb, img.size, 70);
    if (g.count() <= 0 || g.count() > 70 || g.pixels.size() != size_t(g.count()) * 48 * 48 * 3)
      std::abort();
  } catch (const ug::Error&) {
  }
  return 0;
}
