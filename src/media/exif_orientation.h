// The orientation that transformers' load_image applies with PIL.ImageOps.exif_transpose: EXIF tag
// 0x0112 of IFD0, or, when the EXIF data has none, the `tiff:Orientation` of an XMP packet
// (Pillow's getexif falls back to it). Only this one tag is read; this is not a general EXIF
// parser.
#pragma once

#include <cstdint>
#include <span>

namespace ug {

// `exif`: a TIFF-structured EXIF block, with or without the leading "Exif\0\0" of JPEG APP1 / WebP
// EXIF. Returns 1..8 from the Orientation tag, or 0 when there is none (or the block is malformed).
int exif_orientation(std::span<const uint8_t> exif);

// `xmp`: an XMP packet (text). Returns the digit after `tiff:Orientation="` or `tiff:Orientation>`,
// or 0.
int xmp_orientation(std::span<const uint8_t> xmp);

// The orientation to apply: EXIF first, then XMP, else 1 (as stored).
inline int pick_orientation(int from_exif, int from_xmp) {
  return from_exif ? from_exif : from_xmp ? from_xmp : 1;
}

}  // namespace ug
