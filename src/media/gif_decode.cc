// GIF through giflib: the first frame only, as Pillow's GifImagePlugin shows it. The canvas is the
// logical screen, grown to hold the frame if the frame sticks out (Pillow does that too); pixels
// the frame does not cover hold the transparent index when the frame's Graphic Control Extension
// names one, else index 0. The frame's local colour table wins over the global one; with neither
// the image is L (index = gray level). Only the first frame is read, record by record, so an
// animation with thousands of frames costs nothing.
#include <algorithm>
#include <cstring>
#include <memory>

#include "core/error.h"
#include "media/image_codecs.h"

#if UG_HAVE_GIF
#include <gif_lib.h>
#endif

namespace ug {

#if UG_HAVE_GIF
namespace {

struct GifSource {
  const uint8_t* data;
  size_t size, pos;
};

int read_bytes(GifFileType* gif, GifByteType* out, int n) {
  auto* src = static_cast<GifSource*>(gif->UserData);
  const size_t k = std::min(size_t(n < 0 ? 0 : n), src->size - src->pos);
  std::memcpy(out, src->data + src->pos, k);
  src->pos += k;
  return int(k);
}

struct GifCloser {
  void operator()(GifFileType* g) const {
    int err = 0;
    DGifCloseFile(g, &err);
  }
};
using GifPtr = std::unique_ptr<GifFileType, GifCloser>;

[[noreturn]] void fail_gif(std::string_view what, int code) {
  const char* text = GifErrorString(code);
  fail("{}: corrupt GIF: {}", what, text ? text : "unknown giflib error");
}

// Reads the rows of the current image descriptor into the canvas (handles the 4-pass interlace
// order).
void read_frame(GifFileType* gif, const GifImageDesc& d, std::vector<uint8_t>& canvas,
                int64_t canvas_w, std::string_view what) {
  std::vector<GifPixelType> line(size_t(d.Width));
  auto read_row = [&](int64_t y) {
    if (DGifGetLine(gif, line.data(), d.Width) == GIF_ERROR) fail_gif(what, gif->Error);
    std::memcpy(&canvas[size_t((d.Top + y) * canvas_w + d.Left)], line.data(), line.size());
  };
  if (d.Interlace) {
    static constexpr int kStart[] = {0, 4, 2, 1}, kStep[] = {8, 8, 4, 2};
    for (int pass = 0; pass < 4; ++pass)
      for (int64_t y = kStart[pass]; y < d.Height; y += kStep[pass]) read_row(y);
  } else {
    for (int64_t y = 0; y < d.Height; ++y) read_row(y);
  }
}

}  // namespace

PilImage decode_gif(std::span<const uint8_t> bytes, const MediaLimits& limits,
                    std::string_view what) {
  GifSource src{bytes.data(), bytes.size(), 0};
  int err = 0;
  GifPtr gif(DGifOpen(&src, read_bytes, &err));
  if (!gif) fail_gif(what, err);
  // The screen may legitimately be 0 x 0 (the frame then sets the size), but never beyond the
  // limits.
  if (gif->SWidth > 0 || gif->SHeight > 0)
    check_image_size(gif->SWidth, gif->SHeight, limits, what, "GIF");

  int transparent = -1;
  for (;;) {
    GifRecordType type;
    if (DGifGetRecordType(gif.get(), &type) == GIF_ERROR) fail_gif(what, gif->Error);
    if (type == TERMINATE_RECORD_TYPE) fail("{}: GIF file has no image", what);
    if (type == EXTENSION_RECORD_TYPE) {
      int code = 0;
      GifByteType* ext = nullptr;
      if (DGifGetExtension(gif.get(), &code, &ext) == GIF_ERROR) fail_gif(what, gif->Error);
      if (code == GRAPHICS_EXT_FUNC_CODE && ext && ext[0] >= 4)
        transparent = (ext[1] & 1) ? ext[4] : -1;
      while (ext)
        if (DGifGetExtensionNext(gif.get(), &ext) == GIF_ERROR) fail_gif(what, gif->Error);
      continue;
    }
    if (type != IMAGE_DESC_RECORD_TYPE) continue;
    if (DGifGetImageDesc(gif.get()) == GIF_ERROR) fail_gif(what, gif->Error);
    const GifImageDesc d = gif->Image;
    const int64_t w = std::max<int64_t>(gif->SWidth, int64_t(d.Left) + d.Width);
    const int64_t h = std::max<int64_t>(gif->SHeight, int64_t(d.Top) + d.Height);
    check_image_size(w, h, limits, what, "GIF");

    PilImage img;
    img.size = {h, w};
    img.pixels.assign(size_t(w * h), uint8_t(transparent >= 0 ? transparent : 0));
    if (d.Width > 0 && d.Height > 0) read_frame(gif.get(), d, img.pixels, w, what);
    const ColorMapObject* map = d.ColorMap ? d.ColorMap : gif->SColorMap;
    if (map) {
      img.mode = PilMode::P;
      for (int i = 0; i < map->ColorCount && i < 256; ++i) {
        img.palette[size_t(i) * 4 + 0] = map->Colors[i].Red;
        img.palette[size_t(i) * 4 + 1] = map->Colors[i].Green;
        img.palette[size_t(i) * 4 + 2] = map->Colors[i].Blue;
      }
      if (transparent >= 0) img.palette[size_t(transparent) * 4 + 3] = 0;
    } else {
      img.mode = PilMode::L;
      img.transparent_gray = transparent;
    }
    return img;
  }
}

#else

PilImage decode_gif(std::span<const uint8_t>, const MediaLimits&, std::string_view what) {
  fail("{}: this build has no GIF support (install libgif-dev (giflib) and rebuild)", what);
}

#endif

}  // namespace ug
