// The last step of image decoding: a decoded image in one of PIL's modes -> RGB, as HF's processor
// turns a PIL image into RGB (spec §4.1 step 1). The codecs fill a PilImage exactly as Pillow's
// image plugins would (same mode, palette and `info["transparency"]`), so this file is the only
// place that knows Pillow's conversion rules.
//
// Which rule HF applies depends on the transformers version:
//  * current transformers (5.x, which made the fixtures): image_transforms.convert_to_rgb is plain
//    `img.convert("RGB")`: alpha is dropped, palette transparency ignored.
//    tests/data/preprocess/alpha.png.* match this and only this (the composite below differs in 98%
//    of the values).
//  * older transformers (4.x convert_to_rgb): `convert("RGBA")`, `Image.alpha_composite(white,
//  img)`,
//    `convert("RGB")`: transparent pixels become white. Kept as AlphaHandling::CompositeOverWhite,
//    with Pillow's integer arithmetic, for a caller that needs that behaviour.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "media/image_decode.h"

namespace ug {

// The PIL modes our codecs produce. Bytes per pixel: L 1, LA 2, RGB 3, RGBA 4, P 1, CMYK 4.
enum class PilMode { L, LA, RGB, RGBA, P, CMYK };
int pil_mode_channels(PilMode mode);

struct PilImage {
  ImageSize size;
  PilMode mode = PilMode::RGB;
  std::vector<uint8_t> pixels;  // [height, width, pil_mode_channels(mode)]
  // P only: RGBA of each index, tRNS alpha already applied. Pillow leaves the entries a file does
  // not define opaque black, so that is the default here too.
  std::array<uint8_t, 256 * 4> palette = default_palette();
  // L only: Pillow's integer info["transparency"]. convert("RGBA") (CompositeOverWhite) makes the
  // pixels whose value equals its low byte transparent (Pillow compares `value & 0xff`, also for
  // 16-bit keys); convert("RGB") ignores it. -1 = none.
  int transparent_gray = -1;
  // EXIF orientation 1..8 (1 = as stored), applied after conversion as ImageOps.exif_transpose
  // does.
  int orientation = 1;

  static std::array<uint8_t, 256 * 4> default_palette() {
    std::array<uint8_t, 256 * 4> p{};
    for (size_t i = 0; i < 256; ++i) p[i * 4 + 3] = 255;
    return p;
  }
};

// Pillow's ImagingAlphaComposite for one channel value over an opaque white background:
// the result of compositing (v, alpha) onto (255, 255). Exposed for tests.
uint8_t composite_over_white(uint8_t v, uint8_t alpha);

// Pillow's cmyk2rgb for one channel (c, m or y) with black k: CLIP8(nk - MULDIV255(c, nk)), nk =
// 255 - k.
uint8_t cmyk_channel_to_rgb(uint8_t c, uint8_t k);

enum class AlphaHandling {
  Drop,                // Pillow convert("RGB"): what current HF does (the default)
  CompositeOverWhite,  // convert("RGBA") + alpha_composite over white + convert("RGB"): older HF
};

// Consumes `img`; the result has the same size (orientation not yet applied).
RgbImage pil_to_rgb(PilImage&& img, AlphaHandling alpha = AlphaHandling::Drop);

// ImageOps.exif_transpose for orientations 2..8 (others: unchanged).
RgbImage apply_orientation(RgbImage&& img, int orientation);

}  // namespace ug
