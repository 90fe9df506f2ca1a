#include "media/exif_orientation.h"

#include <cstring>
#include <string_view>

namespace ug {

int exif_orientation(std::span<const uint8_t> exif) {
  if (exif.size() >= 6 && std::memcmp(exif.data(), "Exif\0\0", 6) == 0) exif = exif.subspan(6);
  if (exif.size() < 8) return 0;
  bool little;
  if (std::memcmp(exif.data(), "II*\0", 4) == 0) {
    little = true;
  } else if (std::memcmp(exif.data(), "MM\0*", 4) == 0) {
    little = false;
  } else {
    return 0;
  }
  auto u16 = [&](size_t at) -> uint32_t {
    return little ? uint32_t(exif[at]) | uint32_t(exif[at + 1]) << 8
                  : uint32_t(exif[at]) << 8 | exif[at + 1];
  };
  auto u32 = [&](size_t at) -> uint32_t {
    return little ? u16(at) | u16(at + 2) << 16 : u16(at) << 16 | u16(at + 2);
  };
  const size_t ifd = u32(4);
  if (ifd > exif.size() || exif.size() - ifd < 2) return 0;
  const size_t count = u16(ifd);
  for (size_t i = 0; i < count; ++i) {
    const size_t e = ifd + 2 + i * 12;
    if (e > exif.size() || exif.size() - e < 12) return 0;
    if (u16(e) != 0x0112) continue;
    const uint32_t type = u16(e + 2), n = u32(e + 4);
    if (n != 1) return 0;  // Pillow reads a tuple then, which exif_transpose ignores
    uint32_t v = 0;
    if (type == 3) {
      v = u16(e + 8);  // SHORT
    } else if (type == 4) {
      v = u32(e + 8);  // LONG
    } else if (type == 1) {
      v = exif[e + 8];  // BYTE
    } else {
      return 0;
    }
    return v >= 1 && v <= 8 ? int(v) : 0;
  }
  return 0;
}

int xmp_orientation(std::span<const uint8_t> xmp) {
  std::string_view s(reinterpret_cast<const char*>(xmp.data()), xmp.size());
  constexpr std::string_view kTag = "tiff:Orientation";
  for (size_t at = s.find(kTag); at != std::string_view::npos; at = s.find(kTag, at + 1)) {
    size_t p = at + kTag.size();
    if (s.substr(p, 2) == "=\"") {
      p += 2;
    } else if (s.substr(p, 1) == ">") {
      p += 1;
    } else {
      continue;
    }
    if (p < s.size() && s[p] >= '1' && s[p] <= '8') return s[p] - '0';
    return 0;
  }
  return 0;
}

}  // namespace ug
