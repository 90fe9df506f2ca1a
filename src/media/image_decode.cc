#include "media/image_decode.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "core/error.h"
#include "media/image_codecs.h"
#include "media/rgb_convert.h"

namespace ug {

std::string_view image_format_name(ImageFormat f) {
  switch (f) {
    case ImageFormat::Png:
      return "PNG";
    case ImageFormat::Jpeg:
      return "JPEG";
    case ImageFormat::WebP:
      return "WebP";
    case ImageFormat::Gif:
      return "GIF";
    case ImageFormat::Bmp:
      return "BMP";
    case ImageFormat::Unknown:
      break;
  }
  return "unknown";
}

namespace {

bool starts_with(std::span<const uint8_t> b, std::string_view magic, size_t at = 0) {
  return b.size() >= at + magic.size() &&
         std::memcmp(b.data() + at, magic.data(), magic.size()) == 0;
}

// Formats people send that we do not decode, named in the error so the user knows what to convert.
std::string_view unsupported_format_name(std::span<const uint8_t> b) {
  if (starts_with(b, std::string_view("II*\0", 4)) || starts_with(b, std::string_view("MM\0*", 4)))
    return "TIFF";
  if (starts_with(b, "ftypavif", 4) || starts_with(b, "ftypavis", 4)) return "AVIF";
  if (starts_with(b, "ftyphei", 4) || starts_with(b, "ftypmif1", 4) ||
      starts_with(b, "ftypheix", 4))
    return "HEIF/HEIC";
  if (starts_with(b, std::string_view("\0\0\1\0", 4))) return "ICO";
  if (starts_with(b, "8BPS")) return "PSD";
  if (starts_with(b, "<svg") || starts_with(b, "<?xml")) return "SVG/XML";
  if (starts_with(b, "%PDF")) return "PDF";
  if (starts_with(b, std::string_view("\xff\x0a", 2)) ||
      starts_with(b, std::string_view("\0\0\0\x0cJXL ", 8)))
    return "JPEG XL";
  return {};
}

std::string hex_prefix(std::span<const uint8_t> b) {
  std::string s;
  for (size_t i = 0; i < b.size() && i < 8; ++i) s += fmt::format("{}{:02x}", i ? " " : "", b[i]);
  return s;
}

}  // namespace

ImageFormat sniff_image_format(std::span<const uint8_t> b) {
  if (starts_with(b, "\x89PNG\r\n\x1a\n")) return ImageFormat::Png;
  if (starts_with(b, "\xff\xd8\xff")) return ImageFormat::Jpeg;
  if (starts_with(b, "RIFF") && starts_with(b, "WEBP", 8)) return ImageFormat::WebP;
  if (starts_with(b, "GIF87a") || starts_with(b, "GIF89a")) return ImageFormat::Gif;
  if (starts_with(b, "BM")) return ImageFormat::Bmp;
  return ImageFormat::Unknown;
}

void check_image_size(int64_t width, int64_t height, const MediaLimits& limits,
                      std::string_view what, std::string_view format) {
  UG_CHECK(width > 0 && height > 0, "{}: {} image is empty ({} x {} pixels)", what, format, width,
           height);
  UG_CHECK(width <= limits.max_image_side && height <= limits.max_image_side,
           "{}: {} header claims {} x {} pixels; a side may be at most {} pixels "
           "(MediaLimits::max_image_side)",
           what, format, width, height, limits.max_image_side);
  // Divided, not multiplied: no overflow whatever the limits. Every format's sides fit in 32 bits,
  // so the product shown in the message fits in 64.
  UG_CHECK(width <= limits.max_image_pixels / height,
           "{}: {} header claims {} x {} pixels ({}), over the limit of {} pixels "
           "(MediaLimits::max_image_pixels)",
           what, format, width, height, uint64_t(width) * uint64_t(height),
           limits.max_image_pixels);
}

RgbImage decode_image(std::span<const uint8_t> bytes, const MediaLimits& limits,
                      std::string_view what) {
  UG_CHECK(!bytes.empty(), "{}: image data is empty (0 bytes)", what);
  UG_CHECK(int64_t(bytes.size()) <= limits.max_file_bytes,
           "{}: image data is {} bytes, over the limit of {} bytes (MediaLimits::max_file_bytes)",
           what, bytes.size(), limits.max_file_bytes);
  PilImage img;
  switch (sniff_image_format(bytes)) {
    case ImageFormat::Png:
      img = decode_png(bytes, limits, what);
      break;
    case ImageFormat::Jpeg:
      img = decode_jpeg(bytes, limits, what);
      break;
    case ImageFormat::WebP:
      img = decode_webp(bytes, limits, what);
      break;
    case ImageFormat::Gif:
      img = decode_gif(bytes, limits, what);
      break;
    case ImageFormat::Bmp:
      img = decode_bmp(bytes, limits, what);
      break;
    case ImageFormat::Unknown: {
      std::string_view known = unsupported_format_name(bytes);
      if (!known.empty())
        fail(
            "{}: {} images are not supported; supported formats: PNG, JPEG, WebP, GIF, BMP "
            "(convert it to PNG)",
            what, known);
      fail(
          "{}: not a recognized image (first bytes: {}); supported formats: PNG, JPEG, WebP, GIF, "
          "BMP",
          what, hex_prefix(bytes));
    }
  }
  const int orientation = img.orientation;
  return apply_orientation(pil_to_rgb(std::move(img)), orientation);
}

RgbImage decode_image_file(const std::string& path, const MediaLimits& limits) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  UG_CHECK(f != nullptr, "cannot open image file '{}': {}", path, std::strerror(errno));
  std::error_code ec;
  UG_CHECK(!std::filesystem::is_directory(path, ec),
           "cannot read image file '{}': it is a directory", path);
  UG_CHECK(std::fseek(f.get(), 0, SEEK_END) == 0, "cannot read image file '{}': {}", path,
           std::strerror(errno));
  const long size = std::ftell(f.get());
  UG_CHECK(size >= 0, "cannot read image file '{}': {}", path, std::strerror(errno));
  UG_CHECK(size <= limits.max_file_bytes,
           "image file '{}' is {} bytes, over the limit of {} bytes (MediaLimits::max_file_bytes)",
           path, size, limits.max_file_bytes);
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  std::rewind(f.get());
  UG_CHECK(std::fread(bytes.data(), 1, bytes.size(), f.get()) == bytes.size(),
           "cannot read image file '{}': {}", path, std::strerror(errno));
  return decode_image(bytes, limits, path);
}

}  // namespace ug
