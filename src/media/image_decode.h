// Encoded image -> RGB u8 pixels, the way HF's processor sees a PIL image (spec §4.1 step 1): each codec
// reads the file into the mode Pillow would (L, LA, RGB, RGBA, P, CMYK, 16-bit gray as I;16), then Pillow's
// convert("RGB") rules apply, which is what current transformers' convert_to_rgb does: alpha is dropped,
// not composited (the alpha.png fixtures prove it; rgb_convert.h keeps the older composite-over-white rule),
// 16-bit RGB/RGBA/LA keep their high byte and 16-bit gray clips at 255, as Pillow reads them; the EXIF (or
// XMP) orientation is applied (as transformers' load_image does with exif_transpose). Codecs: libpng,
// libjpeg-turbo, libwebp, giflib (first frame), BMP through FFmpeg.
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
