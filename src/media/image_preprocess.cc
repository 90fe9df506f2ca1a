#include "media/image_preprocess.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "core/error.h"

namespace ug {

ImageSize soft_token_size(ImageSize in, int64_t max_soft_tokens, int64_t patch_size, int64_t pooling_kernel_size) {
  UG_CHECK(in.height > 0 && in.width > 0, "image: size {}x{} is empty", in.width, in.height);
  UG_CHECK(max_soft_tokens > 0, "image: max_soft_tokens must be positive, got {}", max_soft_tokens);
  const int64_t side = patch_size * pooling_kernel_size;
  const double max_patches = double(max_soft_tokens * pooling_kernel_size * pooling_kernel_size);
  const double target_px = max_patches * double(patch_size * patch_size);
  const double f = std::sqrt(target_px / (double(in.height) * double(in.width)));
  ImageSize out{int64_t(std::floor(f * double(in.height) / double(side))) * side,
                int64_t(std::floor(f * double(in.width) / double(side))) * side};
  UG_CHECK(out.height > 0 || out.width > 0, "image: {}x{} cannot be resized to a {}-token budget", in.width, in.height,
           max_soft_tokens);
  if (out.height == 0) {  // very wide: one row of patches
    out.height = side;
    out.width = std::min(in.width / in.height * side, max_soft_tokens * side);
  } else if (out.width == 0) {  // very tall: one column
    out.width = side;
    out.height = std::min(in.height / in.width * side, max_soft_tokens * side);
  }
  UG_CHECK(double(out.height) * double(out.width) <= target_px, "image: resized size {}x{} exceeds the {}-token budget",
           out.width, out.height, max_soft_tokens);
  return out;
}

namespace {

double cubic(double x) {  // Keys' cubic convolution, a = -0.5 (PIL / PyTorch antialias)
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
  return 0.0;
}

// Taps of every output index along one axis in fixed point, as PyTorch's uint8 antialias path computes
// them (compute_index_ranges_int16_weights): double weights normalised per output, then scaled to int16
// with the largest precision that keeps the biggest weight below 2^15.
struct Taps {
  std::vector<int64_t> first, count;  // [out]
  std::vector<int16_t> w;             // [out * max_count]
  int64_t stride = 0;                 // max_count
  int precision = 0;
};

Taps compute_taps(int64_t in_size, int64_t out_size) {
  const double scale = double(in_size) / double(out_size);
  const double support = scale >= 1.0 ? 2.0 * scale : 2.0;  // interp_size 4 / 2, widened when downscaling
  const double invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
  Taps t;
  t.stride = int64_t(std::ceil(support)) * 2 + 1;
  std::vector<double> wd(size_t(out_size * t.stride), 0.0);
  double w_max = 0.0;
  for (int64_t i = 0; i < out_size; ++i) {
    const double center = scale * (double(i) + 0.5);
    int64_t xmin = std::max<int64_t>(int64_t(center - support + 0.5), 0);
    int64_t xsize = std::min<int64_t>(int64_t(center + support + 0.5), in_size) - xmin;
    xsize = std::clamp<int64_t>(xsize, 0, t.stride);
    double total = 0.0;
    double* w = &wd[size_t(i * t.stride)];
    for (int64_t j = 0; j < xsize; ++j) {
      w[j] = cubic((double(j + xmin) - center + 0.5) * invscale);
      total += w[j];
    }
    for (int64_t j = 0; j < xsize; ++j) {
      if (total != 0.0) w[j] /= total;
      w_max = std::max(w_max, w[j]);
    }
    t.first.push_back(xmin);
    t.count.push_back(xsize);
  }
  for (t.precision = 0; t.precision < 22; ++t.precision)
    if (int(0.5 + w_max * double(1 << (t.precision + 1))) >= (1 << 15)) break;
  t.w.resize(wd.size());
  for (size_t j = 0; j < wd.size(); ++j) {
    double v = wd[j] * double(1 << t.precision);
    t.w[j] = int16_t(v < 0 ? v - 0.5 : v + 0.5);
  }
  return t;
}

// A fixed-point tap sum -> u8, with PyTorch's rounding and saturation.
inline uint8_t to_u8(int32_t acc, int precision) { return uint8_t(std::clamp(acc >> precision, 0, 255)); }

// Width pass of one row: the three channels of an output pixel share its taps.
void resize_row(const Taps& t, const uint8_t* src, int64_t out_width, uint8_t* dst) {
  const int32_t bias = t.precision > 0 ? 1 << (t.precision - 1) : 0;
  for (int64_t x = 0; x < out_width; ++x) {
    const int16_t* w = &t.w[size_t(x * t.stride)];
    const uint8_t* s = src + t.first[size_t(x)] * 3;
    int32_t r = bias, g = bias, b = bias;
    for (int64_t j = 0; j < t.count[size_t(x)]; ++j, s += 3) {
      r += int32_t(s[0]) * w[j];
      g += int32_t(s[1]) * w[j];
      b += int32_t(s[2]) * w[j];
    }
    dst[3 * x] = to_u8(r, t.precision);
    dst[3 * x + 1] = to_u8(g, t.precision);
    dst[3 * x + 2] = to_u8(b, t.precision);
  }
}

// Height pass of output row y: whole source rows scaled and summed (contiguous, so the compiler vectorizes it;
// integer sums are exact in any order).
void resize_column(const Taps& t, int64_t y, const uint8_t* src, int64_t row, std::vector<int32_t>& acc, uint8_t* dst) {
  acc.assign(size_t(row), t.precision > 0 ? 1 << (t.precision - 1) : 0);
  const int16_t* w = &t.w[size_t(y * t.stride)];
  for (int64_t j = 0; j < t.count[size_t(y)]; ++j) {
    const uint8_t* s = src + (t.first[size_t(y)] + j) * row;
    const int32_t wj = w[j];
    int32_t* a = acc.data();
    for (int64_t i = 0; i < row; ++i) a[i] += int32_t(s[i]) * wj;
  }
  for (int64_t i = 0; i < row; ++i) dst[i] = to_u8(acc[size_t(i)], t.precision);
}

// fn(begin, end) over [0, n) rows: on the pool in ranges of at least 8 rows, or at once.
void for_rows(ThreadPool* pool, int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (pool && pool->size() > 1 && n > 8)
    pool->parallel_for(n, 8, fn);
  else
    fn(0, n);
}

}  // namespace

// torchvision resizes uint8 CPU images with PyTorch's uint8 antialias kernel (PIL's algorithm): a width
// pass into a u8 buffer, then a height pass, each in int32 fixed point.
std::vector<uint8_t> resize_bicubic_antialias(std::span<const uint8_t> rgb, ImageSize in, ImageSize out,
                                              ThreadPool* pool) {
  UG_CHECK(int64_t(rgb.size()) == in.height * in.width * 3, "resize: {} bytes for a {}x{} RGB image", rgb.size(),
           in.width, in.height);
  UG_CHECK(out.height > 0 && out.width > 0, "resize: empty target {}x{}", out.width, out.height);
  std::vector<uint8_t> mid;  // the width pass's output (not needed when the width stays)
  if (out.width != in.width) {
    Taps tw = compute_taps(in.width, out.width);
    mid.resize(size_t(in.height * out.width * 3));
    for_rows(pool, in.height, [&](int64_t begin, int64_t end) {
      for (int64_t y = begin; y < end; ++y)
        resize_row(tw, &rgb[size_t(y * in.width * 3)], out.width, &mid[size_t(y * out.width * 3)]);
    });
    if (out.height == in.height) return mid;
  } else if (out.height == in.height) {
    return {rgb.begin(), rgb.end()};
  }
  const uint8_t* src = mid.empty() ? rgb.data() : mid.data();
  Taps th = compute_taps(in.height, out.height);
  std::vector<uint8_t> dst(size_t(out.height * out.width * 3));
  const int64_t row = out.width * 3;
  for_rows(pool, out.height, [&](int64_t begin, int64_t end) {
    std::vector<int32_t> acc;
    for (int64_t y = begin; y < end; ++y) resize_column(th, y, src, row, acc, &dst[size_t(y * row)]);
  });
  return dst;
}

PatchGrid cut_patches(std::span<const uint8_t> rgb, ImageSize size, int64_t side) {
  UG_CHECK(size.height % side == 0 && size.width % side == 0, "patches: {}x{} is not a multiple of {}", size.width,
           size.height, side);
  UG_CHECK(int64_t(rgb.size()) == size.height * size.width * 3, "patches: {} bytes for a {}x{} RGB image", rgb.size(),
           size.width, size.height);
  PatchGrid g;
  const int64_t rows = size.height / side, cols = size.width / side, row_bytes = side * 3;
  g.pixels.resize(size_t(rows * cols * side * side * 3));
  uint8_t* dst = g.pixels.data();
  for (int64_t Y = 0; Y < rows; ++Y)
    for (int64_t X = 0; X < cols; ++X) {
      for (int64_t r = 0; r < side; ++r) {
        const uint8_t* src = rgb.data() + ((Y * side + r) * size.width + X * side) * 3;
        std::copy(src, src + row_bytes, dst);
        dst += row_bytes;
      }
      g.xs.push_back(int32_t(X));
      g.ys.push_back(int32_t(Y));
    }
  return g;
}

PatchGrid preprocess_image(std::span<const uint8_t> rgb, ImageSize in, int64_t max_soft_tokens, ThreadPool* pool) {
  ImageSize out = soft_token_size(in, max_soft_tokens);
  std::vector<uint8_t> resized = resize_bicubic_antialias(rgb, in, out, pool);
  return cut_patches(resized, out);
}

}  // namespace ug
