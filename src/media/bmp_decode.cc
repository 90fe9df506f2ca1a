// BMP through FFmpeg's libavcodec bmp decoder (it handles every header version, bottom-up /
// top-down rows, palettes, bit fields and RLE), with the pixels mapped the way Pillow's
// BmpImagePlugin reads them: 32-bit BI_RGB ignores the fourth byte ("BGRX"); alpha is used only
// when the header's bit-field masks name an alpha channel; 15/16-bit colours are widened with
// Pillow's v * 255 / max; palette entries are opaque. The header fields needed for the size limit
// and the alpha rule are read here directly.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "core/error.h"
#include "media/image_codecs.h"

#if UG_HAVE_FFMPEG
#include "media/av_input.h"
#endif

namespace ug {

namespace {

struct BmpHeader {
  int64_t width = 0, height = 0;  // height > 0 here; the sign only says the row order
  int bits = 0;
  uint32_t compression = 0;
  bool alpha = false;  // Pillow would produce RGBA
};

uint32_t le32(std::span<const uint8_t> b, size_t at) {
  return uint32_t(b[at]) | uint32_t(b[at + 1]) << 8 | uint32_t(b[at + 2]) << 16 |
         uint32_t(b[at + 3]) << 24;
}
uint32_t le16(std::span<const uint8_t> b, size_t at) {
  return uint32_t(b[at]) | uint32_t(b[at + 1]) << 8;
}

BmpHeader read_bmp_header(std::span<const uint8_t> b, std::string_view what) {
  UG_CHECK(b.size() >= 26, "{}: BMP file is truncated ({} bytes, shorter than its header)", what,
           b.size());
  const uint32_t header_size = le32(b, 14);
  BmpHeader h;
  if (header_size == 12) {  // OS/2 BITMAPCOREHEADER: 16-bit sizes
    h.width = le16(b, 18);
    h.height = le16(b, 20);
    h.bits = int(le16(b, 24));
    return h;
  }
  UG_CHECK(header_size >= 16 && b.size() >= 14 + size_t(std::min<uint32_t>(header_size, 40)),
           "{}: BMP file is truncated or has a bad header size ({})", what, header_size);
  h.width = int32_t(le32(b, 18));
  h.height = std::llabs(int64_t(int32_t(le32(b, 22))));
  h.bits = int(le16(b, 28));
  h.compression = header_size >= 20 ? le32(b, 30) : 0;
  constexpr uint32_t kBitfields = 3, kAlphaBitfields = 6;
  // Pillow reads the alpha mask only from headers of 56 bytes and more (BITMAPV3INFOHEADER and
  // later).
  if (h.bits == 32 && (h.compression == kBitfields || h.compression == kAlphaBitfields) &&
      header_size >= 56 && b.size() >= 70)
    h.alpha = le32(b, 66) != 0;
  return h;
}

}  // namespace

#if UG_HAVE_FFMPEG
namespace {

// Bytes of R, G, B, A inside one 4-byte pixel of an FFmpeg packed format; a = -1 when it has none.
struct Layout4 {
  int r, g, b, a;
};
bool layout4(AVPixelFormat f, Layout4& l) {
  switch (f) {
    case AV_PIX_FMT_BGRA:
      l = {2, 1, 0, 3};
      return true;
    case AV_PIX_FMT_BGR0:
      l = {2, 1, 0, -1};
      return true;
    case AV_PIX_FMT_RGBA:
      l = {0, 1, 2, 3};
      return true;
    case AV_PIX_FMT_RGB0:
      l = {0, 1, 2, -1};
      return true;
    case AV_PIX_FMT_ABGR:
      l = {3, 2, 1, 0};
      return true;
    case AV_PIX_FMT_0BGR:
      l = {3, 2, 1, -1};
      return true;
    case AV_PIX_FMT_ARGB:
      l = {1, 2, 3, 0};
      return true;
    case AV_PIX_FMT_0RGB:
      l = {1, 2, 3, -1};
      return true;
    default:
      return false;
  }
}

// FFmpeg frame -> PilImage (RGB, RGBA or P) following Pillow's reading of the same file.
PilImage frame_to_pil(const AVFrame& f, const BmpHeader& h, std::string_view what) {
  PilImage img;
  img.size = {int64_t(f.height), int64_t(f.width)};
  const size_t w = size_t(f.width), n = w * size_t(f.height);
  const auto fmt = AVPixelFormat(f.format);
  auto row = [&](size_t y) { return f.data[0] + ptrdiff_t(y) * f.linesize[0]; };
  Layout4 l;
  if (fmt == AV_PIX_FMT_BGR24 || fmt == AV_PIX_FMT_RGB24) {
    img.mode = PilMode::RGB;
    img.pixels.resize(n * 3);
    const bool bgr = fmt == AV_PIX_FMT_BGR24;
    for (size_t y = 0; y < size_t(f.height); ++y)
      for (size_t x = 0; x < w; ++x)
        for (int c = 0; c < 3; ++c)
          img.pixels[(y * w + x) * 3 + size_t(c)] = row(y)[x * 3 + size_t(bgr ? 2 - c : c)];
  } else if (layout4(fmt, l)) {
    // Alpha only where Pillow sees an alpha mask; if FFmpeg dropped an all-zero alpha channel the
    // pixels Pillow reads are fully transparent.
    img.mode = h.alpha ? PilMode::RGBA : PilMode::RGB;
    const size_t ch = size_t(pil_mode_channels(img.mode));
    img.pixels.resize(n * ch);
    for (size_t y = 0; y < size_t(f.height); ++y)
      for (size_t x = 0; x < w; ++x) {
        const uint8_t* p = row(y) + x * 4;
        uint8_t* o = &img.pixels[(y * w + x) * ch];
        o[0] = p[l.r];
        o[1] = p[l.g];
        o[2] = p[l.b];
        if (ch == 4) o[3] = l.a >= 0 ? p[l.a] : 0;
      }
  } else if (fmt == AV_PIX_FMT_RGB555LE || fmt == AV_PIX_FMT_RGB565LE) {
    img.mode = PilMode::RGB;
    img.pixels.resize(n * 3);
    const bool g6 = fmt == AV_PIX_FMT_RGB565LE;
    for (size_t y = 0; y < size_t(f.height); ++y)
      for (size_t x = 0; x < w; ++x) {
        const uint32_t v = uint32_t(row(y)[x * 2]) | uint32_t(row(y)[x * 2 + 1]) << 8;
        uint8_t* o = &img.pixels[(y * w + x) * 3];
        o[0] = uint8_t(((v >> (g6 ? 11 : 10)) & 31) * 255 / 31);
        o[1] = uint8_t(g6 ? ((v >> 5) & 63) * 255 / 63 : ((v >> 5) & 31) * 255 / 31);
        o[2] = uint8_t((v & 31) * 255 / 31);
      }
  } else if (fmt == AV_PIX_FMT_PAL8 || fmt == AV_PIX_FMT_GRAY8) {
    img.mode = PilMode::P;
    img.pixels.resize(n);
    for (size_t y = 0; y < size_t(f.height); ++y) std::memcpy(&img.pixels[y * w], row(y), w);
    for (size_t i = 0; i < 256; ++i) {
      uint32_t argb = uint32_t(i) * 0x010101u;
      if (fmt == AV_PIX_FMT_PAL8) std::memcpy(&argb, f.data[1] + i * 4, 4);
      img.palette[i * 4 + 0] = uint8_t(argb >> 16);
      img.palette[i * 4 + 1] = uint8_t(argb >> 8);
      img.palette[i * 4 + 2] = uint8_t(argb);
      img.palette[i * 4 + 3] = 255;
    }
  } else if (fmt == AV_PIX_FMT_MONOBLACK || fmt == AV_PIX_FMT_MONOWHITE) {
    img.mode = PilMode::L;
    img.pixels.resize(n);
    const bool white_is_zero = fmt == AV_PIX_FMT_MONOWHITE;
    for (size_t y = 0; y < size_t(f.height); ++y)
      for (size_t x = 0; x < w; ++x) {
        const bool bit = (row(y)[x / 8] >> (7 - x % 8)) & 1;
        img.pixels[y * w + x] = (bit != white_is_zero) ? 255 : 0;
      }
  } else {
    const char* name = av_get_pix_fmt_name(fmt);
    fail("{}: BMP pixel layout {} ({}-bit) is not supported", what, name ? name : "unknown",
         h.bits);
  }
  return img;
}

}  // namespace

PilImage decode_bmp(std::span<const uint8_t> bytes, const MediaLimits& limits,
                    std::string_view what) {
  const BmpHeader h = read_bmp_header(bytes, what);
  check_image_size(h.width, h.height, limits, what, "BMP");
  av::quiet_ffmpeg_log();  // FFmpeg's complaints become our located errors, not stderr noise
  const AVCodec* codec = avcodec_find_decoder(AV_CODEC_ID_BMP);
  UG_CHECK(codec != nullptr, "{}: this FFmpeg build has no BMP decoder", what);
  av::CodecContext ctx(avcodec_alloc_context3(codec));
  UG_CHECK(ctx != nullptr, "{}: cannot start FFmpeg's BMP decoder (out of memory?)", what);
  ctx->thread_count = 1;
  ctx->max_pixels = limits.max_image_pixels;
  int r = avcodec_open2(ctx.get(), codec, nullptr);
  UG_CHECK(r >= 0, "{}: cannot open FFmpeg's BMP decoder: {}", what, av::error_text(r));

  // The bmp decoder takes the whole file as one packet (it parses the "BM" header itself).
  av::Packet pkt = av::make_packet();
  UG_CHECK(bytes.size() < size_t(INT32_MAX) && av_new_packet(pkt.get(), int(bytes.size())) == 0,
           "{}: cannot allocate {} bytes for the BMP decoder", what, bytes.size());
  std::memcpy(pkt->data, bytes.data(), bytes.size());
  av::Frame frame = av::make_frame();
  r = avcodec_send_packet(ctx.get(), pkt.get());
  if (r >= 0) r = avcodec_receive_frame(ctx.get(), frame.get());
  UG_CHECK(r >= 0, "{}: corrupt or truncated BMP: {}", what, av::error_text(r));
  UG_CHECK(frame->width == h.width && frame->height == h.height,
           "{}: BMP decoder produced {} x {} pixels, the header says {} x {}", what, frame->width,
           frame->height, h.width, h.height);
  return frame_to_pil(*frame, h, what);
}

#else

PilImage decode_bmp(std::span<const uint8_t> bytes, const MediaLimits& limits,
                    std::string_view what) {
  const BmpHeader h = read_bmp_header(bytes, what);
  check_image_size(h.width, h.height, limits, what, "BMP");
  fail("{}: this build has no BMP support (install FFmpeg's libavcodec-dev and rebuild)", what);
}

#endif

}  // namespace ug
