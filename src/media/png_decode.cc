// PNG through libpng, read into the mode Pillow's PngImagePlugin gives each bit depth / colour
// type: gray 1/2/4/8 -> L (scaled to 0..255), gray 16 -> I;16 (which Pillow's convert clips to 255,
// it does not scale), gray+alpha -> LA (16-bit: high byte), RGB / RGBA (16-bit: high byte), palette
// -> P (entries past PLTE are black, as in Pillow). tRNS is kept as Pillow keeps it (palette alphas;
// a gray key unscaled) for the composite rule of rgb_convert.h; convert("RGB") ignores it, and an RGB
// key is ignored always. eXIf (or XMP) gives the orientation. libpng's error callback longjmps, so
// every libpng call sits in a small function that holds no C++ objects with destructors.
#include <algorithm>
#include <cstring>
#include <string>

#include "core/error.h"
#include "media/exif_orientation.h"
#include "media/image_codecs.h"

#if UG_HAVE_PNG
#include <png.h>

#include <csetjmp>
#include <cstdio>
#endif

namespace ug {

#if UG_HAVE_PNG
namespace {

struct PngState {
  png_structp png = nullptr;
  png_infop info = nullptr;
  const uint8_t* data = nullptr;
  size_t size = 0, pos = 0;
  char message[256] = "unknown libpng error";

  ~PngState() {
    if (png) png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
  }
};

void on_error(png_structp png, png_const_charp msg) {
  auto* st = static_cast<PngState*>(png_get_error_ptr(png));
  std::snprintf(st->message, sizeof st->message, "%s", msg);
  png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}  // Pillow ignores what libpng only warns about

void on_read(png_structp png, png_bytep out, size_t n) {
  auto* st = static_cast<PngState*>(png_get_io_ptr(png));
  if (st->size - st->pos < n) png_error(png, "file is truncated");
  std::memcpy(out, st->data + st->pos, n);
  st->pos += n;
}

struct PngHeader {
  png_uint_32 width = 0, height = 0;
  int bit_depth = 0, color_type = 0;
  int num_palette = 0;
  png_color palette[256];
  int num_trans = 0;  // palette: alphas given; gray: 1 when a key is present
  png_byte trans_alpha[256];
  png_uint_16 trans_gray = 0;
};

// Reads the chunks up to the first IDAT and sets the transforms; false on a libpng error.
bool read_header(PngState& st, PngHeader& h, int64_t max_side) {
  if (setjmp(png_jmpbuf(st.png))) return false;
  png_set_read_fn(st.png, &st, on_read);
  const png_uint_32 side = png_uint_32(std::min<int64_t>(max_side, PNG_UINT_31_MAX));
  png_set_user_limits(st.png, side, side);
  png_read_info(st.png, st.info);
  h.width = png_get_image_width(st.png, st.info);
  h.height = png_get_image_height(st.png, st.info);
  h.bit_depth = png_get_bit_depth(st.png, st.info);
  h.color_type = png_get_color_type(st.png, st.info);
  png_colorp pal = nullptr;
  if (png_get_PLTE(st.png, st.info, &pal, &h.num_palette) && pal) {
    if (h.num_palette > 256) h.num_palette = 256;
    std::memcpy(h.palette, pal, sizeof(png_color) * size_t(h.num_palette));
  }
  png_bytep alphas = nullptr;
  png_color_16p key = nullptr;
  if (png_get_tRNS(st.png, st.info, &alphas, &h.num_trans, &key)) {  // copied before any transform
    if (h.color_type == PNG_COLOR_TYPE_PALETTE && alphas) {
      if (h.num_trans > 256) h.num_trans = 256;
      std::memcpy(h.trans_alpha, alphas, size_t(h.num_trans));
    } else if (h.color_type == PNG_COLOR_TYPE_GRAY && key) {
      h.num_trans = 1;
      h.trans_gray = key->gray;
    } else {
      h.num_trans = 0;
    }
  }
  if (h.color_type == PNG_COLOR_TYPE_GRAY && h.bit_depth < 8)
    png_set_expand_gray_1_2_4_to_8(st.png);
  if (h.color_type == PNG_COLOR_TYPE_PALETTE && h.bit_depth < 8) png_set_packing(st.png);
  if (h.bit_depth == 16 && h.color_type != PNG_COLOR_TYPE_GRAY)
    png_set_strip_16(st.png);  // keeps the high byte
  png_set_interlace_handling(st.png);
  png_read_update_info(st.png, st.info);
  return true;
}

bool read_pixels(PngState& st, png_bytepp rows) {
  if (setjmp(png_jmpbuf(st.png))) return false;
  png_read_image(st.png, rows);
  return true;
}

// Chunks after the image data (eXIf, iTXt may sit there). Pillow reads them leniently, so do we.
void read_tail(PngState& st) {
  if (setjmp(png_jmpbuf(st.png))) return;
  png_read_end(st.png, st.info);
}

int png_orientation(PngState& st) {
  int from_exif = 0, from_xmp = 0;
  png_uint_32 n = 0;
  png_bytep exif = nullptr;
  if (png_get_eXIf_1(st.png, st.info, &n, &exif) && exif) from_exif = exif_orientation({exif, n});
  png_textp text = nullptr;
  int num_text = 0;
  png_get_text(st.png, st.info, &text, &num_text);
  for (int i = 0; i < num_text; ++i) {
    if (text[i].key && std::strcmp(text[i].key, "XML:com.adobe.xmp") == 0 && text[i].text) {
      size_t len = text[i].compression >= PNG_ITXT_COMPRESSION_NONE ? text[i].itxt_length
                                                                    : text[i].text_length;
      from_xmp = xmp_orientation({reinterpret_cast<const uint8_t*>(text[i].text), len});
    }
  }
  return pick_orientation(from_exif, from_xmp);
}

// Big-endian IHDR width/height straight from the bytes, so a bomb is refused before libpng runs at
// all.
void check_ihdr(std::span<const uint8_t> b, const MediaLimits& limits, std::string_view what) {
  UG_CHECK(b.size() >= 33, "{}: PNG file is truncated ({} bytes, the header alone needs 33)", what,
           b.size());
  UG_CHECK(std::memcmp(b.data() + 12, "IHDR", 4) == 0,
           "{}: PNG file does not start with an IHDR chunk", what);
  auto be32 = [&](size_t at) {
    return int64_t(b[at]) << 24 | int64_t(b[at + 1]) << 16 | int64_t(b[at + 2]) << 8 |
           int64_t(b[at + 3]);
  };
  check_image_size(be32(16), be32(20), limits, what, "PNG");
}

}  // namespace

PilImage decode_png(std::span<const uint8_t> bytes, const MediaLimits& limits,
                    std::string_view what) {
  check_ihdr(bytes, limits, what);
  PngState st;
  st.data = bytes.data();
  st.size = bytes.size();
  st.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &st, on_error, on_warning);
  UG_CHECK(st.png != nullptr, "{}: libpng could not start (out of memory?)", what);
  st.info = png_create_info_struct(st.png);
  UG_CHECK(st.info != nullptr, "{}: libpng could not start (out of memory?)", what);
  PngHeader h;
  UG_CHECK(read_header(st, h, limits.max_image_side), "{}: corrupt PNG: {}", what, st.message);
  check_image_size(h.width, h.height, limits, what, "PNG");

  PilImage img;
  img.size = {int64_t(h.height), int64_t(h.width)};
  const bool gray16 = h.color_type == PNG_COLOR_TYPE_GRAY && h.bit_depth == 16;
  switch (h.color_type) {
    case PNG_COLOR_TYPE_GRAY:
      img.mode = PilMode::L;
      break;
    case PNG_COLOR_TYPE_GRAY_ALPHA:
      img.mode = PilMode::LA;
      break;
    case PNG_COLOR_TYPE_RGB:
      img.mode = PilMode::RGB;
      break;
    case PNG_COLOR_TYPE_RGB_ALPHA:
      img.mode = PilMode::RGBA;
      break;
    case PNG_COLOR_TYPE_PALETTE:
      img.mode = PilMode::P;
      break;
    default:
      fail("{}: PNG colour type {} is not supported", what, h.color_type);
  }
  const size_t row_bytes = size_t(h.width) * size_t(pil_mode_channels(img.mode)) * (gray16 ? 2 : 1);
  UG_CHECK(png_get_rowbytes(st.png, st.info) == row_bytes, "{}: PNG rows are {} bytes, expected {}",
           what, png_get_rowbytes(st.png, st.info), row_bytes);
  img.pixels.resize(row_bytes * h.height);
  std::vector<png_bytep> rows(h.height);
  for (size_t y = 0; y < h.height; ++y) rows[y] = img.pixels.data() + y * row_bytes;
  UG_CHECK(read_pixels(st, rows.data()), "{}: corrupt PNG: {}", what, st.message);
  read_tail(st);
  img.orientation = png_orientation(st);

  if (gray16) {  // Pillow's I;16 -> L conversion clips: v > 255 becomes 255
    const size_t n = size_t(h.width) * h.height;
    for (size_t i = 0; i < n; ++i) {
      const uint32_t v = uint32_t(img.pixels[2 * i]) << 8 | img.pixels[2 * i + 1];
      img.pixels[i] = uint8_t(v > 255 ? 255 : v);
    }
    img.pixels.resize(n);
  }
  if (img.mode == PilMode::L && h.num_trans) {
    img.transparent_gray = h.bit_depth == 1 ? (h.trans_gray ? 255 : 0) : int(h.trans_gray);
  }
  if (img.mode == PilMode::P) {
    for (int i = 0; i < h.num_palette; ++i) {
      img.palette[size_t(i) * 4 + 0] = h.palette[i].red;
      img.palette[size_t(i) * 4 + 1] = h.palette[i].green;
      img.palette[size_t(i) * 4 + 2] = h.palette[i].blue;
    }
    for (int i = 0; i < h.num_trans; ++i) img.palette[size_t(i) * 4 + 3] = h.trans_alpha[i];
  }
  return img;
}

#else

PilImage decode_png(std::span<const uint8_t>, const MediaLimits&, std::string_view what) {
  fail("{}: this build has no PNG support (install libpng-dev and rebuild)", what);
}

#endif

}  // namespace ug
