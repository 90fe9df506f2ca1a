// Image decoding as HF sees images (PIL): fixtures decoded from the files and run through
// preprocessing must equal HF's patches; every other format is encoded here with the codec
// libraries from known pixels and checked against what Pillow would give; bad input must fail with
// a located ug::Error.
#include "media/image_decode.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>

#include "core/error.h"
#include "io/npy.h"
#include "media/exif_orientation.h"
#include "media/image_preprocess.h"
#include "media/rgb_convert.h"
#include "test_util.h"

#if __has_include(<png.h>) && __has_include(<jpeglib.h>) && __has_include(<webp/encode.h>) && \
    __has_include(<gif_lib.h>)
#define UG_TEST_CODECS 1
#include <gif_lib.h>
#include <jpeglib.h>
#include <png.h>
#include <webp/encode.h>

#include <cstdio>
#endif

namespace ug {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using Bytes = std::vector<uint8_t>;

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// A fixture file decoded, or nothing when this build lacks the codec (a GPU box built without the
// media libraries): the test is then skipped, not failed.
std::optional<RgbImage> decode_fixture(const std::string& name) {
  try {
    return decode_image_file(test::data_path("media/" + name));
  } catch (const Error& e) {
    if (std::string(e.what()).find("this build has no") != std::string::npos) return std::nullopt;
    throw;
  }
}

RgbImage decode(const Bytes& b, const std::string& what = "test image",
                const MediaLimits& limits = {}) {
  return decode_image(b, limits, what);
}

// ---------------------------------------------------------------------------------------------------------
// HF fixtures: PNG files decoded here, then preprocessed, equal HF's uint8 patches exactly.

struct FixtureCase {
  const char* name;
  int budget;
};

class PngFixture : public ::testing::TestWithParam<FixtureCase> {};

TEST_P(PngFixture, PatchesMatchHF) {
  const auto [name, budget] = GetParam();
  std::optional<RgbImage> decoded = decode_fixture(name);
  if (!decoded) GTEST_SKIP() << "built without PNG support";
  const RgbImage& img = *decoded;
  PatchGrid g = preprocess_image(img.rgb, img.size, budget);
  const std::string stem = std::string("preprocess/") + name + "." + std::to_string(budget);
  NpyArray ref = read_npy(test::data_path(stem + ".patches_u8.npy"));
  std::vector<int64_t> pos = npy_as_i64(read_npy(test::data_path(stem + ".positions.npy")));
  ASSERT_EQ(ref.shape[0], g.count());
  ASSERT_EQ(ref.bytes.size(), g.pixels.size());
  EXPECT_EQ(0, std::memcmp(ref.bytes.data(), g.pixels.data(), g.pixels.size()))
      << name << " @ " << budget;
  ASSERT_EQ(pos.size(), size_t(g.count()) * 2);
  for (int64_t i = 0; i < g.count(); ++i) {
    EXPECT_EQ(g.xs[size_t(i)], pos[size_t(2 * i)]);
    EXPECT_EQ(g.ys[size_t(i)], pos[size_t(2 * i + 1)]);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Images, PngFixture,
    ::testing::Values(FixtureCase{"gradient.png", 70}, FixtureCase{"gradient.png", 280},
                      FixtureCase{"alpha.png", 70}, FixtureCase{"alpha.png", 280},
                      FixtureCase{"gray.png", 70}, FixtureCase{"gray.png", 280},
                      FixtureCase{"wide.png", 70}, FixtureCase{"wide.png", 280},
                      FixtureCase{"large.png", 70}, FixtureCase{"large.png", 280}),
    [](const auto& info) {
      std::string s = std::string(info.param.name) + "_" + std::to_string(info.param.budget);
      for (char& c : s)
        if (c == '.') c = '_';
      return s;
    });

size_t count_over(std::span<const uint8_t> a, std::span<const std::byte> b, int tol,
                  int* max_diff) {
  size_t n = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const int d = std::abs(int(a[i]) - int(uint8_t(b[i])));
    *max_diff = std::max(*max_diff, d);
    n += d > tol;
  }
  return n;
}

// libjpeg-turbo with Pillow's settings (ISLOW, fancy upsampling) reproduces PIL's decode bit for
// bit.
TEST(JpegFixture, DecodedPixelsAndPatchesMatchPIL) {
  std::optional<RgbImage> decoded = decode_fixture("noise.jpg");
  if (!decoded) GTEST_SKIP() << "built without JPEG support";
  const RgbImage& img = *decoded;
  NpyArray ref = read_npy(test::data_path("preprocess/noise.jpg.decoded_rgb.npy"));
  ASSERT_EQ(ref.shape, (std::vector<int64_t>{img.size.height, img.size.width, 3}));
  int max_diff = 0;
  EXPECT_EQ(count_over(img.rgb, ref.bytes, 0, &max_diff), 0u) << "max |diff| " << max_diff;
  for (int budget : {70, 280}) {
    PatchGrid g = preprocess_image(img.rgb, img.size, budget);
    NpyArray p = read_npy(
        test::data_path("preprocess/noise.jpg." + std::to_string(budget) + ".patches_u8.npy"));
    ASSERT_EQ(p.bytes.size(), g.pixels.size());
    int patch_max = 0;
    EXPECT_EQ(count_over(g.pixels, p.bytes, 0, &patch_max), 0u)
        << "budget " << budget << " max " << patch_max;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Pillow's conversion arithmetic and the sniffing / orientation helpers.

TEST(RgbConvert, AlphaCompositeOverWhiteIsPillowsIntegerArithmetic) {
  for (int v = 0; v < 256; ++v) {
    EXPECT_EQ(composite_over_white(uint8_t(v), 255), v);
    EXPECT_EQ(composite_over_white(uint8_t(v), 0), 255);
  }
  // Hand-evaluated with PRECISION_BITS 7 and SHIFTFORDIV255 (these differ from float rounding
  // paths).
  EXPECT_EQ(composite_over_white(0, 128), 127);
  EXPECT_EQ(composite_over_white(0, 1), 254);
  EXPECT_EQ(composite_over_white(100, 200), 133);
  // Pillow's cmyk2rgb: nk - MULDIV255(c, nk).
  EXPECT_EQ(cmyk_channel_to_rgb(0, 0), 255);
  EXPECT_EQ(cmyk_channel_to_rgb(255, 0), 0);
  EXPECT_EQ(cmyk_channel_to_rgb(128, 128), 63);
}

// The older HF rule (convert("RGBA") + composite over white), on PilImages as the codecs fill them.
TEST(RgbConvert, CompositeOverWhiteHandlesEveryMode) {
  auto run = [](PilImage img) {
    return pil_to_rgb(std::move(img), AlphaHandling::CompositeOverWhite).rgb;
  };
  PilImage la{{1, 2}, PilMode::LA, {0, 128, 200, 0}};
  EXPECT_EQ(run(la), (std::vector<uint8_t>{127, 127, 127, 255, 255, 255}));
  PilImage l{{1, 2}, PilMode::L, {20, 21}};
  l.transparent_gray = 0x100 + 20;  // Pillow compares the key's low byte
  EXPECT_EQ(run(l), (std::vector<uint8_t>{255, 255, 255, 21, 21, 21}));
  PilImage p{{1, 2}, PilMode::P, {0, 1}};
  p.palette[0] = 9,
  p.palette[3] = 0;  // index 0 transparent; index 1 opaque black (undefined entry)
  EXPECT_EQ(run(p), (std::vector<uint8_t>{255, 255, 255, 0, 0, 0}));
  PilImage rgba{{1, 1}, PilMode::RGBA, {100, 0, 255, 200}};
  EXPECT_EQ(run(rgba), (std::vector<uint8_t>{133, 55, 255}));
  PilImage drop{{1, 1}, PilMode::RGBA, {100, 0, 255, 200}};
  EXPECT_EQ(pil_to_rgb(std::move(drop)).rgb, (std::vector<uint8_t>{100, 0, 255}));
}

TEST(RgbConvert, OrientationMatchesExifTranspose) {
  // 3 wide x 2 high, pixel value = 10 * row + column in every channel.
  RgbImage src{{2, 3}, {}};
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 3; ++c)
      for (int k = 0; k < 3; ++k) src.rgb.push_back(uint8_t(10 * r + c));
  auto first_row = [&](int o) {
    RgbImage out = apply_orientation(RgbImage(src), o);
    std::vector<int> row;
    for (int64_t c = 0; c < out.size.width; ++c) row.push_back(out.rgb[size_t(c * 3)]);
    return std::make_pair(out.size, row);
  };
  EXPECT_EQ(first_row(1).second, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(first_row(2).second, (std::vector<int>{2, 1, 0}));     // mirror
  EXPECT_EQ(first_row(3).second, (std::vector<int>{12, 11, 10}));  // 180
  EXPECT_EQ(first_row(4).second, (std::vector<int>{10, 11, 12}));  // flip vertical
  EXPECT_EQ(first_row(5).second, (std::vector<int>{0, 10}));       // transpose
  EXPECT_EQ(first_row(6).second, (std::vector<int>{10, 0}));       // 90 clockwise
  EXPECT_EQ(first_row(7).second, (std::vector<int>{12, 2}));       // transverse
  EXPECT_EQ(first_row(8).second, (std::vector<int>{2, 12}));       // 90 counter-clockwise
  EXPECT_EQ(first_row(6).first.height, 3);
  EXPECT_EQ(first_row(6).first.width, 2);
}

Bytes tiff_with_orientation(bool little, uint16_t value) {
  Bytes b = little ? Bytes{'I', 'I', 42, 0, 8, 0, 0, 0} : Bytes{'M', 'M', 0, 42, 0, 0, 0, 8};
  auto put16 = [&](uint16_t v) {
    if (little)
      b.insert(b.end(), {uint8_t(v), uint8_t(v >> 8)});
    else
      b.insert(b.end(), {uint8_t(v >> 8), uint8_t(v)});
  };
  auto put32 = [&](uint32_t v) {
    put16(little ? uint16_t(v) : uint16_t(v >> 16)),
        put16(little ? uint16_t(v >> 16) : uint16_t(v));
  };
  put16(2);  // two entries: an unrelated tag, then Orientation (SHORT, 1)
  put16(0x010f), put16(2), put32(4), put32(0);
  put16(0x0112), put16(3), put32(1), put16(value), put16(0);
  put32(0);
  return b;
}

TEST(ExifOrientation, ReadsIfd0BothByteOrdersAndXmp) {
  EXPECT_EQ(exif_orientation(tiff_with_orientation(true, 6)), 6);
  EXPECT_EQ(exif_orientation(tiff_with_orientation(false, 8)), 8);
  Bytes prefixed = {'E', 'x', 'i', 'f', 0, 0};
  Bytes t = tiff_with_orientation(true, 3);
  prefixed.insert(prefixed.end(), t.begin(), t.end());
  EXPECT_EQ(exif_orientation(prefixed), 3);
  EXPECT_EQ(exif_orientation(tiff_with_orientation(true, 9)), 0);
  const size_t entry_end = 8 + 2 + 2 * 12;  // the Orientation entry is the second of IFD0
  for (size_t cut = 0; cut < entry_end; ++cut)
    EXPECT_EQ(exif_orientation({t.data(), cut}), 0);  // never reads past
  const std::string xmp = R"(<rdf:Description tiff:Orientation="5"/>)",
                    xmp2 = "<tiff:Orientation>7</tiff:Orientation>";
  EXPECT_EQ(xmp_orientation({reinterpret_cast<const uint8_t*>(xmp.data()), xmp.size()}), 5);
  EXPECT_EQ(xmp_orientation({reinterpret_cast<const uint8_t*>(xmp2.data()), xmp2.size()}), 7);
  EXPECT_EQ(pick_orientation(0, 0), 1);
  EXPECT_EQ(pick_orientation(6, 3), 6);
}

TEST(Sniff, MagicBytes) {
  auto sniff = [](std::string_view s) {
    return sniff_image_format({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
  };
  using namespace std::string_view_literals;
  EXPECT_EQ(sniff("\x89PNG\r\n\x1a\n...."sv), ImageFormat::Png);
  EXPECT_EQ(sniff("\xff\xd8\xff\xe0"sv), ImageFormat::Jpeg);
  EXPECT_EQ(sniff("RIFF\x10\0\0\0WEBPVP8L"sv), ImageFormat::WebP);
  EXPECT_EQ(sniff("RIFF\x10\0\0\0WAVEfmt "sv), ImageFormat::Unknown);
  EXPECT_EQ(sniff("GIF87a.."sv), ImageFormat::Gif);
  EXPECT_EQ(sniff("GIF89a.."sv), ImageFormat::Gif);
  EXPECT_EQ(sniff("BM......"sv), ImageFormat::Bmp);
  EXPECT_EQ(sniff(""sv), ImageFormat::Unknown);
  EXPECT_EQ(image_format_name(ImageFormat::WebP), "WebP");
}

TEST(BadInput, EmptyUnknownUnsupportedMissingAndOversizedFiles) {
  EXPECT_THAT(error_of([] { decode({}, "req image 2"); }),
              AllOf(HasSubstr("req image 2"), HasSubstr("empty")));
  EXPECT_THAT(
      error_of([] {
        decode({'I', 'I', 42, 0, 8, 0, 0, 0}, "scan.tif");
      }),
      AllOf(HasSubstr("scan.tif"), HasSubstr("TIFF"), HasSubstr("PNG, JPEG, WebP, GIF, BMP")));
  EXPECT_THAT(
      error_of([] {
        decode({'h', 'e', 'l', 'l', 'o'}, "x.bin");
      }),
      AllOf(HasSubstr("x.bin"), HasSubstr("not a recognized image"), HasSubstr("68 65 6c 6c 6f")));
  EXPECT_THAT(error_of([] { decode_image_file("/nonexistent/cat.png"); }),
              AllOf(HasSubstr("/nonexistent/cat.png"), HasSubstr("No such file")));
  MediaLimits tiny;
  tiny.max_file_bytes = 100;
  EXPECT_THAT(error_of([&] { decode_image_file(test::data_path("media/gradient.png"), tiny); }),
              AllOf(HasSubstr("gradient.png"), HasSubstr("max_file_bytes")));
}

#if UG_TEST_CODECS
// ---------------------------------------------------------------------------------------------------------
// Test encoders: the codec libraries write known pixels (errors abort: a broken encoder is a test
// bug).

uint32_t crc32_of(const uint8_t* p, size_t n, uint32_t crc = 0) {
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
  }
  return ~crc;
}

struct PngSpec {
  int width = 0, height = 0, color_type = PNG_COLOR_TYPE_RGB, bit_depth = 8;
  std::vector<uint16_t> samples;  // [h, w, channels], each < 2^bit_depth
  std::vector<png_color> palette;
  Bytes trns_alpha;  // palette tRNS
  int trns_gray = -1;
  bool interlace = false;
  Bytes exif;  // eXIf payload (TIFF)
};

void png_abort(png_structp, png_const_charp msg) {
  std::fprintf(stderr, "test PNG encoder: %s\n", msg);
  std::abort();
}
void png_append(png_structp png, png_bytep p, size_t n) {
  auto* out = static_cast<Bytes*>(png_get_io_ptr(png));
  out->insert(out->end(), p, p + n);
}

Bytes encode_png(const PngSpec& s) {
  Bytes out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, png_abort, nullptr);
  png_infop info = png_create_info_struct(png);
  png_set_write_fn(png, &out, png_append, nullptr);
  png_set_IHDR(png, info, png_uint_32(s.width), png_uint_32(s.height), s.bit_depth, s.color_type,
               s.interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (!s.palette.empty()) png_set_PLTE(png, info, s.palette.data(), int(s.palette.size()));
  png_color_16 key{};
  key.gray = png_uint_16(s.trns_gray);
  if (!s.trns_alpha.empty())
    png_set_tRNS(png, info, s.trns_alpha.data(), int(s.trns_alpha.size()), nullptr);
  if (s.trns_gray >= 0) png_set_tRNS(png, info, nullptr, 0, &key);
  if (!s.exif.empty())
    png_set_eXIf_1(png, info, png_uint_32(s.exif.size()), const_cast<png_bytep>(s.exif.data()));
  png_write_info(png, info);
  const int channels = png_get_channels(png, info);
  const size_t row_bytes = png_get_rowbytes(png, info);
  std::vector<Bytes> rows(size_t(s.height), Bytes(row_bytes, 0));
  for (int y = 0; y < s.height; ++y) {  // pack the samples MSB first, 16-bit big-endian
    for (int i = 0; i < s.width * channels; ++i) {
      const uint16_t v = s.samples[size_t(y * s.width * channels + i)];
      Bytes& r = rows[size_t(y)];
      if (s.bit_depth == 16) {
        r[size_t(2 * i)] = uint8_t(v >> 8), r[size_t(2 * i + 1)] = uint8_t(v);
      } else {
        const int bit = i * s.bit_depth;
        r[size_t(bit / 8)] |= uint8_t(v << (8 - s.bit_depth - bit % 8));
      }
    }
  }
  std::vector<png_bytep> ptrs;
  for (Bytes& r : rows) ptrs.push_back(r.data());
  png_write_image(png, ptrs.data());
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return out;
}

void expect_rgb(const RgbImage& img, int64_t h, int64_t w, const std::vector<int>& rgb, int tol = 0,
                const char* what = "") {
  ASSERT_EQ(img.size.height, h) << what;
  ASSERT_EQ(img.size.width, w) << what;
  ASSERT_EQ(img.rgb.size(), rgb.size()) << what;
  for (size_t i = 0; i < rgb.size(); ++i)
    ASSERT_LE(std::abs(int(img.rgb[i]) - rgb[i]), tol)
        << what << ": byte " << i << " pixel " << i / 3;
}

std::vector<int> gray_rgb(const std::vector<int>& g) {
  std::vector<int> out;
  for (int v : g) out.insert(out.end(), {v, v, v});
  return out;
}

TEST(Png, GrayDepthsScaleLikePillowAndSixteenBitGrayClips) {
  expect_rgb(decode(encode_png({2, 1, PNG_COLOR_TYPE_GRAY, 1, {0, 1}})), 1, 2, gray_rgb({0, 255}));
  expect_rgb(decode(encode_png({4, 1, PNG_COLOR_TYPE_GRAY, 2, {0, 1, 2, 3}})), 1, 4,
             gray_rgb({0, 85, 170, 255}));
  expect_rgb(decode(encode_png({3, 1, PNG_COLOR_TYPE_GRAY, 4, {0, 7, 15}})), 1, 3,
             gray_rgb({0, 119, 255}));
  // Pillow opens 16-bit gray as I;16 and its conversion clips to 255 instead of taking the high
  // byte.
  expect_rgb(decode(encode_png({5, 1, PNG_COLOR_TYPE_GRAY, 16, {0, 100, 255, 256, 65535}})), 1, 5,
             gray_rgb({0, 100, 255, 255, 255}));
}

TEST(Png, GrayTransparencyKeyIsIgnoredByConvertRgb) {
  PngSpec s{3, 1, PNG_COLOR_TYPE_GRAY, 8, {10, 20, 30}};
  s.trns_gray = 20;
  expect_rgb(decode(encode_png(s)), 1, 3, gray_rgb({10, 20, 30}));
}

// convert("RGB") drops alpha (current HF); 16-bit samples keep their high byte as Pillow reads
// them.
TEST(Png, AlphaIsDroppedAndSixteenBitKeepsHighByte) {
  // LA 8-bit and 16-bit.
  const std::vector<int> la_expect = gray_rgb({0, 200, 50});
  expect_rgb(decode(encode_png({3, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8, {0, 128, 200, 255, 50, 0}})), 1,
             3, la_expect);
  expect_rgb(
      decode(encode_png(
          {3, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 16, {0x00ff, 0x80ff, 0xc8aa, 0xff00, 0x3200, 0x00ff}})),
      1, 3, la_expect);
  // RGB 16-bit: high byte.
  expect_rgb(decode(encode_png({1, 1, PNG_COLOR_TYPE_RGB, 16, {0x1234, 0xabff, 0xff00}})), 1, 1,
             {0x12, 0xab, 0xff});
  // RGBA 8 and 16.
  const std::vector<int> rgba_expect = {10, 200, 40, 1, 2, 3};
  expect_rgb(
      decode(encode_png({2, 1, PNG_COLOR_TYPE_RGB_ALPHA, 8, {10, 200, 40, 100, 1, 2, 3, 255}})), 1,
      2, rgba_expect);
  expect_rgb(decode(encode_png({2,
                                1,
                                PNG_COLOR_TYPE_RGB_ALPHA,
                                16,
                                {0x0a00, 0xc8ff, 0x2801, 0x6400, 0x0100, 0x0200, 0x03ff, 0xffff}})),
             1, 2, rgba_expect);
}

TEST(Png, PaletteWithTrnsAndIndicesPastThePalette) {
  PngSpec s{4, 1, PNG_COLOR_TYPE_PALETTE, 8, {0, 1, 2, 3}};
  s.palette = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
  s.trns_alpha = {
      0, 128};  // ignored by convert("RGB"); index 3 is not in PLTE: Pillow's entry is black
  expect_rgb(decode(encode_png(s)), 1, 4, {255, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0});
  PngSpec p4{3, 1, PNG_COLOR_TYPE_PALETTE, 4, {2, 0, 1}};  // packed 4-bit indices, no tRNS
  p4.palette = {{1, 2, 3}, {4, 5, 6}, {7, 8, 9}};
  expect_rgb(decode(encode_png(p4)), 1, 3, {7, 8, 9, 1, 2, 3, 4, 5, 6});
}

TEST(Png, InterlacedAndExifOrientation) {
  PngSpec s{9, 7, PNG_COLOR_TYPE_RGB, 8, {}};
  std::vector<int> expect;
  for (int i = 0; i < 9 * 7 * 3; ++i)
    s.samples.push_back(uint16_t(i * 7 % 256)), expect.push_back(i * 7 % 256);
  s.interlace = true;
  expect_rgb(decode(encode_png(s)), 7, 9, expect);
  PngSpec r{2, 1, PNG_COLOR_TYPE_RGB, 8, {1, 1, 1, 2, 2, 2}};
  r.exif = tiff_with_orientation(false, 6);  // 90 degrees clockwise: 2 x 1 becomes 1 x 2
  expect_rgb(decode(encode_png(r)), 2, 1, {1, 1, 1, 2, 2, 2});
}

TEST(Png, OnePixelImageGoesThroughPreprocessing) {
  RgbImage img = decode(encode_png({1, 1, PNG_COLOR_TYPE_RGB, 8, {9, 99, 199}}));
  for (int budget : {70, 280}) {
    PatchGrid g = preprocess_image(img.rgb, img.size, budget);
    ASSERT_GT(g.count(), 0);
    EXPECT_LE(g.count(), budget);
    for (size_t i = 0; i < g.pixels.size(); i += 3)
      ASSERT_EQ(g.pixels[i + 1], 99);  // a constant image stays constant
  }
}

// JPEG writer: `components` 1 (gray), 3 (RGB) or 4 (CMYK stored as given); 4:4:4 so flat blocks
// stay flat.
Bytes encode_jpeg(const Bytes& px, int w, int h, int components, int quality,
                  const Bytes& app1 = {}) {
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);  // libjpeg's default exit() on error is fine inside a test encoder
  jpeg_create_compress(&c);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buf, &size);
  c.image_width = JDIMENSION(w);
  c.image_height = JDIMENSION(h);
  c.input_components = components;
  c.in_color_space = components == 1 ? JCS_GRAYSCALE : components == 3 ? JCS_RGB : JCS_CMYK;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, quality, TRUE);
  for (int i = 0; i < c.num_components; ++i)
    c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = 1;
  jpeg_start_compress(&c, TRUE);
  if (!app1.empty()) jpeg_write_marker(&c, JPEG_APP0 + 1, app1.data(), unsigned(app1.size()));
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(&px[size_t(c.next_scanline) * size_t(w * components)]);
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  Bytes out(buf, buf + size);
  std::free(buf);
  return out;
}

// 16 x 8 pixels: the left 8 x 8 block one flat colour, the right another.
Bytes two_blocks(int components, std::vector<int> left, std::vector<int> right) {
  Bytes px;
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 16; ++x)
      for (int c = 0; c < components; ++c)
        px.push_back(uint8_t(x < 8 ? left[size_t(c)] : right[size_t(c)]));
  return px;
}

TEST(Jpeg, RgbGrayAndCmyk) {
  RgbImage rgb = decode(encode_jpeg(two_blocks(3, {200, 30, 60}, {10, 120, 250}), 16, 8, 3, 100));
  ASSERT_EQ(rgb.size.width, 16);
  expect_rgb(RgbImage{{1, 1}, {rgb.rgb.begin(), rgb.rgb.begin() + 3}}, 1, 1, {200, 30, 60}, 2,
             "rgb left");
  RgbImage gray = decode(encode_jpeg(two_blocks(1, {90}, {180}), 16, 8, 1, 100));
  for (size_t i = 0; i < gray.rgb.size(); i += 3) {
    ASSERT_EQ(gray.rgb[i], gray.rgb[i + 1]);
    ASSERT_EQ(gray.rgb[i], gray.rgb[i + 2]);
  }
  EXPECT_NEAR(gray.rgb[0], 90, 1);
  EXPECT_NEAR(gray.rgb[15 * 3], 180, 1);
  // Pillow inverts the stored CMYK ("CMYK;I"), then r = (255-k') - (255-k')*c'/255 = k*c/255 in
  // stored terms.
  RgbImage cmyk =
      decode(encode_jpeg(two_blocks(4, {255, 128, 0, 200}, {40, 255, 255, 255}), 16, 8, 4, 100));
  ASSERT_EQ(cmyk.size.width, 16);
  expect_rgb(RgbImage{{1, 1}, {cmyk.rgb.begin(), cmyk.rgb.begin() + 3}}, 1, 1, {200, 100, 0}, 3,
             "cmyk left");
  expect_rgb(RgbImage{{1, 1}, {cmyk.rgb.begin() + 45, cmyk.rgb.begin() + 48}}, 1, 1, {40, 255, 255},
             3, "cmyk right");
}

TEST(Jpeg, ExifOrientationIsApplied) {
  const Bytes px = two_blocks(3, {250, 0, 0}, {0, 0, 250});  // red | blue
  for (int o = 1; o <= 8; ++o) {
    Bytes app1 = {'E', 'x', 'i', 'f', 0, 0};
    Bytes t = tiff_with_orientation(o % 2 == 0, uint16_t(o));
    app1.insert(app1.end(), t.begin(), t.end());
    RgbImage img = decode(encode_jpeg(px, 16, 8, 3, 95, app1));
    RgbImage plain = decode(encode_jpeg(px, 16, 8, 3, 95));
    RgbImage want = apply_orientation(std::move(plain), o);
    ASSERT_EQ(img.size.height, o >= 5 ? 16 : 8) << "orientation " << o;
    EXPECT_EQ(img.rgb, want.rgb) << "orientation " << o;
    const bool red_first = img.rgb[0] > img.rgb[2];  // top-left pixel: red or blue
    EXPECT_EQ(red_first, o == 1 || o == 4 || o == 5 || o == 6) << "orientation " << o;
  }
}

TEST(WebP, LosslessExactLossyClose) {
  Bytes rgba;
  // Alpha never 0: the lossless encoder may rewrite the colour under fully transparent pixels.
  for (int i = 0; i < 6 * 5; ++i)
    rgba.insert(rgba.end(), {uint8_t(i * 8), uint8_t(255 - i), uint8_t(i * 3), uint8_t(1 + i * 8)});
  uint8_t* out = nullptr;
  size_t n = WebPEncodeLosslessRGBA(rgba.data(), 6, 5, 6 * 4, &out);
  ASSERT_GT(n, 0u);
  Bytes lossless(out, out + n);
  WebPFree(out);
  std::vector<int> want;
  for (size_t i = 0; i < rgba.size(); i += 4)
    for (int c = 0; c < 3; ++c) want.push_back(rgba[i + size_t(c)]);  // alpha dropped
  expect_rgb(decode(lossless, "a.webp"), 5, 6, want, 0, "lossless rgba");

  Bytes rgb;
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x) rgb.insert(rgb.end(), {uint8_t(x * 8), uint8_t(y * 8), 128});
  n = WebPEncodeLosslessRGB(rgb.data(), 32, 32, 32 * 3, &out);
  Bytes lossless_rgb(out, out + n);
  WebPFree(out);
  expect_rgb(decode(lossless_rgb), 32, 32, std::vector<int>(rgb.begin(), rgb.end()), 0,
             "lossless rgb");
  n = WebPEncodeRGB(rgb.data(), 32, 32, 32 * 3, 95, &out);
  Bytes lossy(out, out + n);
  WebPFree(out);
  expect_rgb(decode(lossy), 32, 32, std::vector<int>(rgb.begin(), rgb.end()), 24, "lossy rgb");
}

// A WebP container built chunk by chunk around VP8L bitstreams from the encoder (libwebpmux, which
// would write animations, is not linked): VP8X flags, ANIM / ANMF frames, an EXIF chunk.
void put_le(Bytes& b, uint32_t v, int n);
Bytes riff_chunk(const char* fourcc, const Bytes& payload) {
  Bytes c(fourcc, fourcc + 4);
  put_le(c, uint32_t(payload.size()), 4);
  c.insert(c.end(), payload.begin(), payload.end());
  if (payload.size() % 2) c.push_back(0);
  return c;
}
Bytes riff_webp(const std::vector<Bytes>& chunks) {
  Bytes body = {'W', 'E', 'B', 'P'};
  for (const Bytes& c : chunks) body.insert(body.end(), c.begin(), c.end());
  Bytes b = {'R', 'I', 'F', 'F'};
  put_le(b, uint32_t(body.size()), 4);
  b.insert(b.end(), body.begin(), body.end());
  return b;
}
Bytes vp8l_chunk(const Bytes& rgba, int w, int h) {  // the encoder's "VP8L" chunk, header included
  uint8_t* out = nullptr;
  const size_t n = WebPEncodeLosslessRGBA(rgba.data(), w, h, w * 4, &out);
  Bytes chunk(out + 12, out + n);
  WebPFree(out);
  return chunk;
}
Bytes vp8x(uint8_t flags, int w, int h) {
  Bytes p = {flags, 0, 0, 0};
  put_le(p, uint32_t(w - 1), 3), put_le(p, uint32_t(h - 1), 3);
  return riff_chunk("VP8X", p);
}

TEST(WebP, AnimationGivesItsFirstFrameAndExifRotates) {
  // 4 x 3 canvas; frame 1: 2 x 2 red at (2, 0); frame 2: the whole canvas blue. Pixels outside
  // frame 1 are the decoder's transparent black canvas, shown black once alpha is dropped.
  Bytes red, blue;
  for (int i = 0; i < 4; ++i) red.insert(red.end(), {255, 0, 0, 255});
  for (int i = 0; i < 12; ++i) blue.insert(blue.end(), {0, 0, 255, 255});
  auto anmf = [](int x, int y, int w, int h, const Bytes& frame) {
    Bytes p;
    put_le(p, uint32_t(x / 2), 3), put_le(p, uint32_t(y / 2), 3), put_le(p, uint32_t(w - 1), 3);
    put_le(p, uint32_t(h - 1), 3), put_le(p, 100, 3), p.push_back(0);
    p.insert(p.end(), frame.begin(), frame.end());
    return riff_chunk("ANMF", p);
  };
  Bytes anim = riff_webp({vp8x(0x12, 4, 3), riff_chunk("ANIM", {0, 0, 0, 0, 0, 0}),
                          anmf(2, 0, 2, 2, vp8l_chunk(red, 2, 2)),
                          anmf(0, 0, 4, 3, vp8l_chunk(blue, 4, 3))});
  std::vector<int> want(4 * 3 * 3, 0);
  for (int y = 0; y < 2; ++y)
    for (int x = 2; x < 4; ++x) want[size_t((y * 4 + x) * 3)] = 255;
  expect_rgb(decode(anim, "anim.webp"), 3, 4, want, 0, "animated");

  Bytes exif = tiff_with_orientation(true, 3);  // ROTATE_180
  Bytes px = {1, 1, 1, 255, 2, 2, 2, 255};
  Bytes still = riff_webp({vp8x(0x08, 2, 1), vp8l_chunk(px, 2, 1), riff_chunk("EXIF", exif)});
  expect_rgb(decode(still, "exif.webp"), 1, 2, {2, 2, 2, 1, 1, 1}, 0, "exif");
}

// GIF writer: 4-colour global palette, one frame at (left, top), optional transparent index (GCE).
Bytes encode_gif(int screen_w, int screen_h, int left, int top, int w, int h, const Bytes& idx,
                 int transparent, bool interlace) {
  Bytes out;
  auto write = [](GifFileType* g, const GifByteType* p, int n) {
    static_cast<Bytes*>(g->UserData)->insert(static_cast<Bytes*>(g->UserData)->end(), p, p + n);
    return n;
  };
  int err = 0;
  GifFileType* g = EGifOpen(&out, write, &err);
  GifColorType colors[4] = {{10, 20, 30}, {200, 0, 0}, {0, 200, 0}, {0, 0, 200}};
  ColorMapObject* map = GifMakeMapObject(4, colors);
  EGifSetGifVersion(g, true);
  EGifPutScreenDesc(g, screen_w, screen_h, 8, 0, map);
  if (transparent >= 0) {
    const GifByteType gce[4] = {1, 0, 0, GifByteType(transparent)};
    EGifPutExtension(g, GRAPHICS_EXT_FUNC_CODE, 4, gce);
  }
  EGifPutImageDesc(g, left, top, w, h, interlace, nullptr);
  std::vector<int> order;
  if (interlace) {
    for (int pass = 0, starts[] = {0, 4, 2, 1}, steps[] = {8, 8, 4, 2}; pass < 4; ++pass)
      for (int y = starts[pass]; y < h; y += steps[pass]) order.push_back(y);
  } else {
    for (int y = 0; y < h; ++y) order.push_back(y);
  }
  for (int y : order) EGifPutLine(g, const_cast<GifPixelType*>(&idx[size_t(y * w)]), w);
  EGifCloseFile(g, &err);
  GifFreeMapObject(map);
  return out;
}

TEST(Gif, FirstFrameWithTransparencyOnTheScreenCanvas) {
  // 3 x 2 screen, a 2 x 1 frame at (1, 1) with indices {2, 1}; index 2 transparent. The uncovered
  // canvas holds the transparent index, and convert("RGB") shows its palette colour (green).
  RgbImage img = decode(encode_gif(3, 2, 1, 1, 2, 1, {2, 1}, 2, false));
  expect_rgb(img, 2, 3, {0, 200, 0, 0, 200, 0, 0, 200, 0, 0, 200, 0, 0, 200, 0, 200, 0, 0});
  // No transparency: uncovered pixels are index 0.
  expect_rgb(decode(encode_gif(2, 1, 1, 0, 1, 1, {3}, -1, false)), 1, 2, {10, 20, 30, 0, 0, 200});
  // Interlaced 1 x 9 column: rows come back in raster order.
  Bytes col = {0, 1, 2, 3, 0, 1, 2, 3, 1};
  std::vector<int> want;
  const int pal[4][3] = {{10, 20, 30}, {200, 0, 0}, {0, 200, 0}, {0, 0, 200}};
  for (uint8_t i : col) want.insert(want.end(), {pal[i][0], pal[i][1], pal[i][2]});
  expect_rgb(decode(encode_gif(1, 9, 0, 0, 1, 9, col, -1, true)), 9, 1, want);
}

// ---------------------------------------------------------------------------------------------------------
// BMP: written by hand (the format is a header and raw rows), decoded by FFmpeg.

void put_le(Bytes& b, uint32_t v, int n) {
  for (int i = 0; i < n; ++i) b.push_back(uint8_t(v >> (8 * i)));
}

// `rows`: bottom-up (or top-down with top_down), each already padded to 4 bytes.
Bytes make_bmp(int w, int h, int bits, uint32_t compression, uint32_t header_size,
               const Bytes& extra, const Bytes& rows, bool top_down = false) {
  Bytes b = {'B', 'M'};
  const uint32_t offset = 14 + header_size + uint32_t(extra.size());
  put_le(b, offset + uint32_t(rows.size()), 4), put_le(b, 0, 4), put_le(b, offset, 4);
  put_le(b, header_size, 4), put_le(b, uint32_t(w), 4), put_le(b, uint32_t(top_down ? -h : h), 4);
  put_le(b, 1, 2), put_le(b, uint32_t(bits), 2), put_le(b, compression, 4),
      put_le(b, uint32_t(rows.size()), 4);
  const uint32_t colors_used = bits <= 8 ? uint32_t(extra.size() / 4) : 0;
  put_le(b, 2835, 4), put_le(b, 2835, 4), put_le(b, colors_used, 4), put_le(b, 0, 4);
  b.resize(14 + header_size, 0);
  b.insert(b.end(), extra.begin(), extra.end());
  b.insert(b.end(), rows.begin(), rows.end());
  return b;
}

TEST(Bmp, TwentyFourAndThirtyTwoBitPaletteAndBitfields) {
  // 24-bit 2 x 2 bottom-up, rows padded to 8 bytes: the file's first row (blue, white) is the
  // bottom one.
  const Bytes rows24 = {255, 0,   0, 255, 255, 255, 0, 0, /* top: red, green */ 0,
                        0,   255, 0, 255, 0,   0,   0};
  expect_rgb(decode(make_bmp(2, 2, 24, 0, 40, {}, rows24), "a.bmp"), 2, 2,
             {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255});
  // 32-bit BI_RGB: Pillow reads BGRX, the fourth byte is ignored even when it is not zero.
  expect_rgb(decode(make_bmp(1, 1, 32, 0, 40, {}, {30, 20, 10, 7})), 1, 1, {10, 20, 30});
  // 32-bit V5 bit fields with an alpha mask: Pillow reads BGRA, convert("RGB") drops alpha.
  // Top-down.
  Bytes v5(124 - 40, 0);
  const uint32_t masks[4] = {0x00ff0000, 0x0000ff00, 0x000000ff, 0xff000000};
  for (int m = 0; m < 4; ++m)
    for (int k = 0; k < 4; ++k) v5[size_t(m * 4 + k)] = uint8_t(masks[m] >> (8 * k));
  Bytes bmp = make_bmp(2, 1, 32, 3, 124, {}, {30, 20, 10, 128, 1, 2, 3, 255}, true);
  std::copy(v5.begin(), v5.end(), bmp.begin() + 54);
  expect_rgb(decode(bmp), 1, 2, {10, 20, 30, 3, 2, 1});
  // 8-bit palette (BGRX entries): indices 1, 0.
  expect_rgb(decode(make_bmp(2, 1, 8, 0, 40, {5, 6, 7, 0, 50, 60, 70, 0}, {1, 0, 0, 0})), 1, 2,
             {70, 60, 50, 7, 6, 5});
  // 16-bit 5-6-5 bit fields: Pillow widens with v * 255 / max (31 -> 255, 16 -> 131, 32/63 -> 129).
  Bytes m565;
  put_le(m565, 0xf800, 4), put_le(m565, 0x07e0, 4), put_le(m565, 0x001f, 4);
  const uint16_t px = uint16_t(31 << 11 | 32 << 5 | 16);
  expect_rgb(decode(make_bmp(1, 1, 16, 3, 40, m565, {uint8_t(px), uint8_t(px >> 8), 0, 0})), 1, 1,
             {255, 129, 131});
}

// ---------------------------------------------------------------------------------------------------------
// Bad input: truncation, corruption, and headers that claim more pixels than the limits allow.

struct Sample {
  const char* name;
  Bytes bytes;
};

std::vector<Sample> valid_samples() {
  Bytes rgb;
  for (int i = 0; i < 16 * 16; ++i)
    rgb.insert(rgb.end(), {uint8_t(i), uint8_t(i * 3), uint8_t(i * 7)});
  PngSpec p{16, 16, PNG_COLOR_TYPE_RGB, 8, std::vector<uint16_t>(rgb.begin(), rgb.end())};
  uint8_t* out = nullptr;
  size_t n = WebPEncodeLosslessRGB(rgb.data(), 16, 16, 48, &out);
  Bytes webp(out, out + n);
  WebPFree(out);
  n = WebPEncodeRGB(rgb.data(), 16, 16, 48, 80, &out);
  Bytes lossy(out, out + n);
  WebPFree(out);
  Bytes idx(16 * 16);
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = uint8_t(i % 4);
  Bytes rows24(16 * 16 * 3, 77);
  return {{"t.png", encode_png(p)},
          {"t.jpg", encode_jpeg(rgb, 16, 16, 3, 90)},
          {"t.webp", webp},
          {"lossy.webp", lossy},
          {"t.gif", encode_gif(16, 16, 0, 0, 16, 16, idx, 1, false)},
          {"t.bmp", make_bmp(16, 16, 24, 0, 40, {}, rows24)}};
}

TEST(BadInput, TruncatedFilesOfEveryFormatFail) {
  for (const Sample& s : valid_samples()) {
    ASSERT_NO_THROW(decode(s.bytes, s.name)) << s.name;
    // Cutting a PNG's tail (IEND) is harmless, as in Pillow; every other cut loses pixel data.
    const bool png = std::string(s.name) == "t.png";
    for (size_t keep : {size_t(8), s.bytes.size() / 2, s.bytes.size() * 3 / 4,
                        s.bytes.size() - (png ? 40 : 12)}) {
      Bytes cut(s.bytes.begin(), s.bytes.begin() + std::ptrdiff_t(keep));
      EXPECT_THAT(error_of([&] { decode(cut, s.name); }), HasSubstr(s.name))
          << s.name << " cut to " << keep;
    }
  }
}

TEST(BadInput, CorruptBytesNeverCrash) {
  // Flipping bytes must give either an image or a located error (no crash; ASan checks the rest).
  for (const Sample& s : valid_samples()) {
    for (size_t at = 2; at < s.bytes.size(); at += 7) {
      Bytes bad = s.bytes;
      bad[at] ^= 0x5a;
      try {
        RgbImage img = decode(bad, s.name);
        EXPECT_EQ(img.rgb.size(), size_t(img.size.height * img.size.width * 3));
      } catch (const Error& e) {
        EXPECT_THAT(e.what(), HasSubstr(s.name));
      }
    }
  }
  Bytes png = valid_samples()[0].bytes;
  png[png.size() / 2] ^= 0xff;  // inside IDAT: the CRC check fails
  EXPECT_THAT(error_of([&] { decode(png, "bad.png"); }),
              AllOf(HasSubstr("bad.png"), HasSubstr("corrupt PNG")));
}

Bytes png_bomb(uint32_t w, uint32_t h) {
  Bytes b = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
  for (uint32_t v : {w, h})
    b.insert(b.end(), {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)});
  b.insert(b.end(), {8, 2, 0, 0, 0});
  const uint32_t crc = crc32_of(&b[12], 17);
  b.insert(b.end(), {uint8_t(crc >> 24), uint8_t(crc >> 16), uint8_t(crc >> 8), uint8_t(crc)});
  b.insert(b.end(), {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82});
  return b;
}

TEST(BadInput, HugeHeadersFailBeforeAllocating) {
  EXPECT_THAT(
      error_of([] { decode(png_bomb(100000, 100000), "bomb.png"); }),
      AllOf(HasSubstr("bomb.png"), HasSubstr("100000 x 100000"), HasSubstr("max_image_side")));
  MediaLimits lim;
  lim.max_image_side = 1'000'000;
  EXPECT_THAT(
      error_of([&] { decode(png_bomb(100000, 100000), "bomb.png", lim); }),
      AllOf(HasSubstr("10000000000"), HasSubstr("64000000"), HasSubstr("max_image_pixels")));
  EXPECT_THAT(error_of([] { decode(png_bomb(0, 5), "zero.png"); }),
              AllOf(HasSubstr("zero.png"), HasSubstr("empty")));

  std::vector<Sample> s = valid_samples();
  Bytes jpg = s[1].bytes;  // patch SOF0 to 65000 x 65000
  for (size_t i = 2; i + 9 < jpg.size(); ++i)
    if (jpg[i] == 0xff && jpg[i + 1] == 0xc0) {
      jpg[i + 5] = 0xfd, jpg[i + 6] = 0xe8, jpg[i + 7] = 0xfd, jpg[i + 8] = 0xe8;
      break;
    }
  EXPECT_THAT(error_of([&] { decode(jpg, "bomb.jpg"); }),
              AllOf(HasSubstr("bomb.jpg"), HasSubstr("65000 x 65000")));
  Bytes webp =
      s[2].bytes;  // VP8L header: 14-bit width-1 and height-1 right after the 0x2f signature
  ASSERT_EQ(webp[20], 0x2f);
  webp[21] = 0xff, webp[22] = 0xff, webp[23] = 0xff, webp[24] = (webp[24] & 0xf0) | 0x0f;
  EXPECT_THAT(error_of([&] { decode(webp, "bomb.webp"); }),
              AllOf(HasSubstr("bomb.webp"), HasSubstr("16384 x 16384")));
  Bytes gif = s[4].bytes;  // logical screen 65535 x 65535
  gif[6] = gif[7] = gif[8] = gif[9] = 0xff;
  EXPECT_THAT(error_of([&] { decode(gif, "bomb.gif"); }),
              AllOf(HasSubstr("bomb.gif"), HasSubstr("65535 x 65535")));
  Bytes bmp = make_bmp(100000, 100000, 24, 0, 40, {}, {0, 0, 0, 0});
  EXPECT_THAT(error_of([&] { decode(bmp, "bomb.bmp"); }),
              AllOf(HasSubstr("bomb.bmp"), HasSubstr("100000 x 100000")));
}
#endif  // UG_TEST_CODECS

}  // namespace
}  // namespace ug
