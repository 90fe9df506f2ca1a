// Encoded image -> RGB u8 pixels, the way HF's processor sees a PIL image (spec §4.1 step 1): grayscale and
// palette images are expanded, an alpha channel is composited over opaque white with PIL's integer
// alpha_composite arithmetic, 16-bit samples keep their high byte (as PIL reads them), and the JPEG EXIF
// orientation is applied (as transformers' load_image does). Codecs: libpng, libjpeg-turbo, libwebp,
// giflib (first frame), BMP through FFmpeg.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "media/image_preprocess.h"
#include "media/media_limits.h"

namespace ug {

struct RgbImage {
  ImageSize size;
  std::vector<uint8_t> rgb;  // [height, width, 3]
};

enum class ImageFormat { Unknown, Png, Jpeg, WebP, Gif, Bmp };
std::string_view image_format_name(ImageFormat f);

// From the leading magic bytes; Unknown when none matches.
ImageFormat sniff_image_format(std::span<const uint8_t> bytes);

// Throws ug::Error naming `what` (a file name or "request image 2") for corrupt, truncated or unsupported
// data, for sizes beyond `limits` (checked from the header, before pixels are allocated) and for empty images.
RgbImage decode_image(std::span<const uint8_t> bytes, const MediaLimits& limits, std::string_view what);
RgbImage decode_image_file(const std::string& path, const MediaLimits& limits = {});

}  // namespace ug
