// JPEG through libjpeg(-turbo) with the settings Pillow uses: ISLOW DCT, fancy upsampling, output
// colour space by component count (1 -> L, 3 -> RGB, 4 -> CMYK; YCCK is converted to CMYK by
// libjpeg). Pillow reads every 4-component JPEG as Adobe-inverted CMYK ("CMYK;I"), so the samples
// are inverted here too. The EXIF (APP1 "Exif") orientation, or failing that the XMP one, is
// returned for exif_transpose. The error manager longjmps (libjpeg's default calls exit()), so the
// libjpeg calls sit in small functions that hold no C++ objects with destructors.
#include <cstring>

#include "core/error.h"
#include "media/exif_orientation.h"
#include "media/image_codecs.h"

#if UG_HAVE_JPEG
#include <jerror.h>
#include <jpeglib.h>

#include <csetjmp>
#include <cstdio>
#endif

namespace ug {

#if UG_HAVE_JPEG
namespace {

// A real progressive JPEG has about ten scans; thousands of tiny scans are a known CPU bomb (each
// one re-walks the whole coefficient buffer), so we stop far above anything a camera or encoder
// writes.
constexpr int kMaxScans = 256;

struct JpegState {
  jpeg_decompress_struct cinfo;
  jpeg_error_mgr jerr;
  jpeg_progress_mgr progress;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = "unknown libjpeg error";
  bool created = false;

  ~JpegState() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
};

JpegState& state_of(j_common_ptr c) { return *static_cast<JpegState*>(c->client_data); }

[[noreturn]] void on_error(j_common_ptr c) {
  JpegState& st = state_of(c);
  (*c->err->format_message)(c, st.message);
  std::longjmp(st.jump, 1);
}

// Warnings are ignored as Pillow ignores them, except running out of data: libjpeg would pad the
// image with gray, Pillow reports "image file is truncated".
void on_message(j_common_ptr c, int level) {
  if (level == -1 && c->err->msg_code == JWRN_JPEG_EOF) on_error(c);
}

void on_progress(j_common_ptr c) {
  if (c->is_decompressor && reinterpret_cast<j_decompress_ptr>(c)->input_scan_number > kMaxScans) {
    JpegState& st = state_of(c);
    std::snprintf(st.message, sizeof st.message, "more than %d scans", kMaxScans);
    std::longjmp(st.jump, 1);
  }
}

bool read_header(JpegState& st, std::span<const uint8_t> bytes) {
  st.cinfo.err = jpeg_std_error(&st.jerr);
  st.jerr.error_exit = on_error;
  st.jerr.emit_message = on_message;
  st.cinfo.client_data = &st;
  if (setjmp(st.jump)) return false;
  jpeg_create_decompress(&st.cinfo);
  st.created = true;
  st.progress.progress_monitor = on_progress;
  st.cinfo.progress = &st.progress;
  jpeg_mem_src(&st.cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
  jpeg_save_markers(&st.cinfo, JPEG_APP0 + 1, 0xffff);
  jpeg_read_header(&st.cinfo, TRUE);
  return true;
}

// Decodes all rows into `out` (row_bytes each). jpeg_finish_decompress is not called: Pillow does
// not fail on a missing EOI after the last row, and destroying the decompressor is enough.
bool read_pixels(JpegState& st, uint8_t* out, size_t row_bytes) {
  if (setjmp(st.jump)) return false;
  jpeg_start_decompress(&st.cinfo);
  while (st.cinfo.output_scanline < st.cinfo.output_height) {
    JSAMPROW row = out + size_t(st.cinfo.output_scanline) * row_bytes;
    jpeg_read_scanlines(&st.cinfo, &row, 1);
  }
  return true;
}

int jpeg_orientation(const jpeg_decompress_struct& cinfo) {
  static constexpr char kXmp[] = "http://ns.adobe.com/xap/1.0/";  // followed by a NUL
  int from_exif = 0, from_xmp = 0;
  bool seen_exif = false, seen_xmp = false;
  for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next) {
    if (m->marker != JPEG_APP0 + 1) continue;
    std::span<const uint8_t> d(m->data, m->data_length);
    if (!seen_exif && d.size() >= 6 && std::memcmp(d.data(), "Exif\0\0", 6) == 0) {
      seen_exif = true;  // Pillow keeps the first EXIF segment
      from_exif = exif_orientation(d);
    } else if (!seen_xmp && d.size() >= sizeof kXmp &&
               std::memcmp(d.data(), kXmp, sizeof kXmp) == 0) {
      seen_xmp = true;
      from_xmp = xmp_orientation(d.subspan(sizeof kXmp));
    }
  }
  return pick_orientation(from_exif, from_xmp);
}

}  // namespace

PilImage decode_jpeg(std::span<const uint8_t> bytes, const MediaLimits& limits,
                     std::string_view what) {
  JpegState st;
  UG_CHECK(read_header(st, bytes), "{}: corrupt JPEG: {}", what, st.message);
  jpeg_decompress_struct& c = st.cinfo;
  check_image_size(c.image_width, c.image_height, limits, what, "JPEG");
  PilImage img;
  img.size = {int64_t(c.image_height), int64_t(c.image_width)};
  switch (c.num_components) {
    case 1:
      img.mode = PilMode::L;
      c.out_color_space = JCS_GRAYSCALE;
      break;
    case 3:
      img.mode = PilMode::RGB;
      c.out_color_space = JCS_RGB;
      break;
    case 4:
      img.mode = PilMode::CMYK;
      c.out_color_space = JCS_CMYK;
      break;
    default:
      fail("{}: JPEG with {} colour components is not supported (1, 3 or 4)", what,
           c.num_components);
  }
  c.dct_method = JDCT_ISLOW;
  c.do_fancy_upsampling = TRUE;
  img.orientation = jpeg_orientation(c);
  const size_t row_bytes = size_t(c.image_width) * size_t(c.num_components);
  img.pixels.resize(row_bytes * c.image_height);
  UG_CHECK(read_pixels(st, img.pixels.data(), row_bytes), "{}: corrupt JPEG: {}", what, st.message);
  if (img.mode == PilMode::CMYK)
    for (uint8_t& v : img.pixels) v = uint8_t(255 - v);
  return img;
}

#else

PilImage decode_jpeg(std::span<const uint8_t>, const MediaLimits&, std::string_view what) {
  fail("{}: this build has no JPEG support (install libjpeg-turbo (libjpeg-dev) and rebuild)",
       what);
}

#endif

}  // namespace ug
