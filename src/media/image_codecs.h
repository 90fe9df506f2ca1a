// Internal to src/media: one decoder per container format, each filling a PilImage the way Pillow's
// plugin for that format would (mode, palette, transparency, EXIF orientation). image_decode.cc
// sniffs the format, dispatches here and converts to RGB (rgb_convert.h). Every decoder checks the
// image size from the header against MediaLimits before it allocates pixels, and reports problems
// as ug::Error naming `what`.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "media/media_limits.h"
#include "media/rgb_convert.h"

namespace ug {

PilImage decode_png(std::span<const uint8_t> bytes, const MediaLimits& limits,
                    std::string_view what);
PilImage decode_jpeg(std::span<const uint8_t> bytes, const MediaLimits& limits,
                     std::string_view what);
PilImage decode_webp(std::span<const uint8_t> bytes, const MediaLimits& limits,
                     std::string_view what);
PilImage decode_gif(std::span<const uint8_t> bytes, const MediaLimits& limits,
                    std::string_view what);
PilImage decode_bmp(std::span<const uint8_t> bytes, const MediaLimits& limits,
                    std::string_view what);

// Rejects an empty image and one beyond the limits, e.g.
// "big.png: PNG header claims 100000 x 100000 pixels (10000000000), over the limit of 64000000
// pixels (MediaLimits::max_image_pixels)". Call it with the header's size before allocating.
void check_image_size(int64_t width, int64_t height, const MediaLimits& limits,
                      std::string_view what, std::string_view format);

}  // namespace ug
