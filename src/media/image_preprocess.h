// Image preprocessing identical to HF's Gemma4UnifiedImageProcessor (spec §4.1), from decoded RGB pixels:
// the soft-token budget picks an aspect-preserving size in multiples of 48, torchvision's antialiased
// bicubic resizes to it (PyTorch's uint8 kernel on CPU), and the image is cut into 48x48 patches.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/thread_pool.h"

namespace ug {

struct ImageSize {
  int64_t height = 0;
  int64_t width = 0;
};

// The size HF resizes an H x W image to for `max_soft_tokens` (70, 140, 280, 560 or 1120 in HF; any
// positive budget works here). patch_size 16 and pooling 3 give 48-pixel model patches.
ImageSize soft_token_size(ImageSize in, int64_t max_soft_tokens, int64_t patch_size = 16,
                          int64_t pooling_kernel_size = 3);

// RGB u8 [h, w, 3] -> RGB u8 [out_h, out_w, 3]: PyTorch's uint8 _upsample_bicubic2d_aa (a = -0.5,
// support widened when downscaling), width pass then height pass, int16 fixed-point weights. With a pool, each pass
// splits its rows over the pool's threads (rows are independent, integer sums: the same bytes either way).
std::vector<uint8_t> resize_bicubic_antialias(std::span<const uint8_t> rgb, ImageSize in, ImageSize out,
                                              ThreadPool* pool = nullptr);

// Patches of a resized image: [n, side * side * 3] u8 in (row, col, channel) order, raster order over the
// grid, with each patch's (x = column, y = row).
struct PatchGrid {
  std::vector<uint8_t> pixels;
  std::vector<int32_t> xs, ys;
  int64_t count() const { return int64_t(xs.size()); }
};
PatchGrid cut_patches(std::span<const uint8_t> rgb, ImageSize size, int64_t side = 48);

// All three steps (the resize on `pool` when given).
PatchGrid preprocess_image(std::span<const uint8_t> rgb, ImageSize in, int64_t max_soft_tokens,
                           ThreadPool* pool = nullptr);

}  // namespace ug
