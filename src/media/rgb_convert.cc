#include "media/rgb_convert.h"

#include <cstring>
#include <utility>

#include "core/error.h"

namespace ug {

int pil_mode_channels(PilMode mode) {
  switch (mode) {
    case PilMode::L:
    case PilMode::P:
      return 1;
    case PilMode::LA:
      return 2;
    case PilMode::RGB:
      return 3;
    case PilMode::RGBA:
    case PilMode::CMYK:
      return 4;
  }
  return 0;
}

namespace {

// Pillow's rounded division by 255 of a value < 2^24 (AlphaComposite.c, Imaging.h).
constexpr uint32_t shift_for_div255(uint32_t a) { return ((a >> 8) + a) >> 8; }
constexpr uint32_t muldiv255(uint32_t a, uint32_t b) { return shift_for_div255(a * b + 128); }

// Pillow's integer alpha_composite (7 extra bits of precision, rounded divisions) of src over dst,
// written for a general dst although ours is always opaque white, so that it reads like the
// original.
struct Rgba {
  uint32_t r, g, b, a;
};
Rgba alpha_composite(Rgba dst, Rgba src) {
  constexpr uint32_t kPrecisionBits = 7;
  if (src.a == 0) return dst;
  const uint32_t blend = dst.a * (255 - src.a);
  const uint32_t outa255 = src.a * 255 + blend;
  const uint32_t coef1 = src.a * 255 * 255 * (1u << kPrecisionBits) / outa255;
  const uint32_t coef2 = 255 * (1u << kPrecisionBits) - coef1;
  auto channel = [&](uint32_t s, uint32_t d) {
    return shift_for_div255(s * coef1 + d * coef2 + (0x80u << kPrecisionBits)) >> kPrecisionBits;
  };
  return {channel(src.r, dst.r), channel(src.g, dst.g), channel(src.b, dst.b),
          shift_for_div255(outa255 + 0x80)};
}

// 256 x 256 table of composite_over_white, built once: every pixel with alpha is one lookup per
// channel.
const std::vector<uint8_t>& white_composite_table() {
  static const std::vector<uint8_t> table = [] {
    std::vector<uint8_t> t(256 * 256);
    for (uint32_t a = 0; a < 256; ++a)
      for (uint32_t v = 0; v < 256; ++v)
        t[a * 256 + v] = uint8_t(alpha_composite({255, 255, 255, 255}, {v, v, v, a}).r);
    return t;
  }();
  return table;
}

}  // namespace

uint8_t composite_over_white(uint8_t v, uint8_t alpha) {
  return white_composite_table()[size_t(alpha) * 256 + v];
}

uint8_t cmyk_channel_to_rgb(uint8_t c, uint8_t k) {
  const int nk = 255 - k;
  const int v = nk - int(muldiv255(c, uint32_t(nk)));
  return uint8_t(v < 0 ? 0 : v > 255 ? 255 : v);
}

namespace {

// Pillow's convert("RGB") per mode: the colour channels as they are, alpha and transparency
// ignored.
void drop_alpha(const PilImage& img, uint8_t* o, size_t n) {
  const uint8_t* in = img.pixels.data();
  for (size_t i = 0; i < n; ++i, o += 3) {
    switch (img.mode) {
      case PilMode::L:
        o[0] = o[1] = o[2] = in[i];
        break;
      case PilMode::LA:
        o[0] = o[1] = o[2] = in[2 * i];
        break;
      case PilMode::RGBA:
        std::memcpy(o, &in[4 * i], 3);
        break;
      case PilMode::P:
        std::memcpy(o, &img.palette[size_t(in[i]) * 4], 3);
        break;
      case PilMode::CMYK:
        for (int c = 0; c < 3; ++c)
          o[c] = cmyk_channel_to_rgb(in[4 * i + size_t(c)], in[4 * i + 3]);
        break;
      case PilMode::RGB:
        std::memcpy(o, &in[3 * i], 3);
        break;
    }
  }
}

// convert("RGBA") then alpha_composite over white: every pixel's alpha through the composite table.
void composite_white(const PilImage& img, uint8_t* o, size_t n) {
  const std::vector<uint8_t>& white = white_composite_table();
  const uint8_t* in = img.pixels.data();
  const int key = img.transparent_gray < 0 ? -1 : (img.transparent_gray & 0xff);
  for (size_t i = 0; i < n; ++i, o += 3) {
    uint8_t rgba[4] = {0, 0, 0, 255};
    switch (img.mode) {
      case PilMode::L:
        rgba[0] = rgba[1] = rgba[2] = in[i], rgba[3] = int(in[i]) == key ? 0 : 255;
        break;
      case PilMode::LA:
        rgba[0] = rgba[1] = rgba[2] = in[2 * i], rgba[3] = in[2 * i + 1];
        break;
      case PilMode::RGBA:
        std::memcpy(rgba, &in[4 * i], 4);
        break;
      case PilMode::P:
        std::memcpy(rgba, &img.palette[size_t(in[i]) * 4], 4);
        break;
      case PilMode::CMYK:  // cmyk2rgb gives opaque pixels
        for (int c = 0; c < 3; ++c)
          rgba[c] = cmyk_channel_to_rgb(in[4 * i + size_t(c)], in[4 * i + 3]);
        break;
      case PilMode::RGB:
        std::memcpy(rgba, &in[3 * i], 3);
        break;
    }
    const uint8_t* row = &white[size_t(rgba[3]) * 256];
    o[0] = row[rgba[0]], o[1] = row[rgba[1]], o[2] = row[rgba[2]];
  }
}

}  // namespace

RgbImage pil_to_rgb(PilImage&& img, AlphaHandling alpha) {
  const size_t n = size_t(img.size.height * img.size.width);
  UG_CHECK(img.pixels.size() == n * size_t(pil_mode_channels(img.mode)),
           "image: decoded buffer holds {} bytes, expected {}", img.pixels.size(),
           n * size_t(pil_mode_channels(img.mode)));
  RgbImage out{img.size, {}};
  if (img.mode == PilMode::RGB) {  // HF returns RGB images untouched (an RGB tRNS key is ignored)
    out.rgb = std::move(img.pixels);
    return out;
  }
  out.rgb.resize(n * 3);
  if (alpha == AlphaHandling::Drop) {
    drop_alpha(img, out.rgb.data(), n);
  } else {
    composite_white(img, out.rgb.data(), n);
  }
  img.pixels = {};
  return out;
}

RgbImage apply_orientation(RgbImage&& img, int orientation) {
  if (orientation < 2 || orientation > 8) return std::move(img);
  const int64_t h = img.size.height, w = img.size.width;
  const bool swap =
      orientation >= 5;  // TRANSPOSE, ROTATE_270, TRANSVERSE, ROTATE_90 exchange the sides
  RgbImage out{swap ? ImageSize{w, h} : img.size, std::vector<uint8_t>(img.rgb.size())};
  const int64_t oh = out.size.height, ow = out.size.width;
  for (int64_t r = 0; r < oh; ++r) {
    for (int64_t c = 0; c < ow; ++c) {
      int64_t sr = r, sc = c;  // source row / column of output pixel (r, c)
      switch (orientation) {
        case 2:
          sc = w - 1 - c;
          break;  // FLIP_LEFT_RIGHT
        case 3:
          sr = h - 1 - r;
          sc = w - 1 - c;
          break;  // ROTATE_180
        case 4:
          sr = h - 1 - r;
          break;  // FLIP_TOP_BOTTOM
        case 5:
          sr = c;
          sc = r;
          break;  // TRANSPOSE
        case 6:
          sr = h - 1 - c;
          sc = r;
          break;  // ROTATE_270 (90 degrees clockwise)
        case 7:
          sr = h - 1 - c;
          sc = w - 1 - r;
          break;  // TRANSVERSE
        case 8:
          sr = c;
          sc = w - 1 - r;
          break;  // ROTATE_90 (counter-clockwise)
      }
      const uint8_t* s = &img.rgb[size_t((sr * w + sc) * 3)];
      uint8_t* d = &out.rgb[size_t((r * ow + c) * 3)];
      d[0] = s[0];
      d[1] = s[1];
      d[2] = s[2];
    }
  }
  return out;
}

}  // namespace ug
