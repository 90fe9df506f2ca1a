// WebP through libwebp's animation decoder, as Pillow's WebPImagePlugin reads every WebP (still or
// animated): the first frame composited on a transparent canvas, non-premultiplied RGBA, kept as
// RGBA when the bitstream has alpha and as RGB otherwise. The EXIF / XMP chunk gives the
// orientation.
#include <cstring>
#include <memory>

#include "core/error.h"
#include "media/exif_orientation.h"
#include "media/image_codecs.h"

#if UG_HAVE_WEBP
#include <webp/decode.h>
#include <webp/demux.h>
#endif

namespace ug {

#if UG_HAVE_WEBP
namespace {

std::string_view status_text(VP8StatusCode s) {
  switch (s) {
    case VP8_STATUS_OK:
      return "ok";
    case VP8_STATUS_OUT_OF_MEMORY:
      return "out of memory";
    case VP8_STATUS_INVALID_PARAM:
      return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR:
      return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE:
      return "unsupported feature";
    case VP8_STATUS_SUSPENDED:
      return "suspended";
    case VP8_STATUS_USER_ABORT:
      return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA:
      return "file is truncated";
  }
  return "unknown error";
}

int chunk_orientation(const WebPDemuxer* demux, const char* fourcc, bool is_exif) {
  WebPChunkIterator it;
  int result = 0;
  if (WebPDemuxGetChunk(demux, fourcc, 1, &it)) {
    std::span<const uint8_t> d(it.chunk.bytes, it.chunk.size);
    result = is_exif ? exif_orientation(d) : xmp_orientation(d);
    WebPDemuxReleaseChunkIterator(&it);
  }
  return result;
}

}  // namespace

PilImage decode_webp(std::span<const uint8_t> bytes, const MediaLimits& limits,
                     std::string_view what) {
  WebPBitstreamFeatures features;
  const VP8StatusCode status = WebPGetFeatures(bytes.data(), bytes.size(), &features);
  UG_CHECK(status == VP8_STATUS_OK, "{}: corrupt WebP: {}", what, status_text(status));
  check_image_size(features.width, features.height, limits, what, "WebP");

  const WebPData data{bytes.data(), bytes.size()};
  std::unique_ptr<WebPDemuxer, void (*)(WebPDemuxer*)> demux(WebPDemux(&data), &WebPDemuxDelete);
  UG_CHECK(demux != nullptr, "{}: corrupt or truncated WebP (the container does not parse)", what);
  const int64_t width = WebPDemuxGetI(demux.get(), WEBP_FF_CANVAS_WIDTH);
  const int64_t height = WebPDemuxGetI(demux.get(), WEBP_FF_CANVAS_HEIGHT);
  check_image_size(width, height, limits, what, "WebP");

  PilImage img;
  img.size = {height, width};
  img.mode = features.has_alpha ? PilMode::RGBA : PilMode::RGB;
  img.orientation = pick_orientation(chunk_orientation(demux.get(), "EXIF", true),
                                     chunk_orientation(demux.get(), "XMP ", false));

  WebPAnimDecoderOptions options;
  UG_CHECK(WebPAnimDecoderOptionsInit(&options), "{}: libwebp version mismatch", what);
  options.color_mode = MODE_RGBA;
  options.use_threads = 0;
  std::unique_ptr<WebPAnimDecoder, void (*)(WebPAnimDecoder*)> dec(
      WebPAnimDecoderNew(&data, &options), &WebPAnimDecoderDelete);
  UG_CHECK(dec != nullptr, "{}: corrupt WebP (the decoder rejects it)", what);
  uint8_t* canvas = nullptr;
  int timestamp = 0;
  UG_CHECK(WebPAnimDecoderGetNext(dec.get(), &canvas, &timestamp) && canvas,
           "{}: corrupt or truncated WebP (the first frame does not decode)", what);

  const size_t n = size_t(width * height);
  if (img.mode == PilMode::RGBA) {
    img.pixels.assign(canvas, canvas + n * 4);
  } else {
    img.pixels.resize(n * 3);
    for (size_t i = 0; i < n; ++i) std::memcpy(&img.pixels[i * 3], &canvas[i * 4], 3);
  }
  return img;
}

#else

PilImage decode_webp(std::span<const uint8_t>, const MediaLimits&, std::string_view what) {
  fail("{}: this build has no WebP support (install libwebp-dev and rebuild)", what);
}

#endif

}  // namespace ug
