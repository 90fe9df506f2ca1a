#include "media/sinc_resampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <numeric>

#include "core/error.h"

namespace ug {
namespace {

constexpr int kLowpassFilterWidth = 6;  // torchaudio's defaults
constexpr double kRolloff = 0.99;
constexpr int64_t kLanes = 8;           // taps per phase are padded to a multiple of this (dot())
constexpr int64_t kMaxKernelFloats = int64_t(16) << 20;

// One tap of torchaudio's _get_sinc_resample_kernel for a float32 waveform (resample() passes the
// waveform's dtype, so every step is a float32 tensor op; Python scalars become float32 operands).
// Returns false where t is clamped to +-6 (the tap is then below 1e-20 and left out).
bool kernel_tap(int64_t i, int64_t j, int64_t orig, int64_t new_rate, int64_t width, double base,
                float& value) {
  const float idx = float(j - width) / float(orig);   // arange(-width, width + orig) / orig
  float t = float(-i) / float(new_rate) + idx;         // arange(0, -new, -1) / new + idx
  t *= float(base);
  const auto lpw = float(kLowpassFilterWidth);
  if (!(t > -lpw && t < lpw)) return false;            // clamp_(-6, 6) would change or pin it
  const float pi = float(std::numbers::pi);
  float window = std::cos(t * pi / lpw / 2.0f);
  window = window * window;                           // ** 2
  t *= pi;
  const float sinc = t == 0.0f ? 1.0f : std::sin(t) / t;
  value = sinc * (window * float(base / double(orig)));  // kernels *= window * scale
  return true;
}

// sum_j k[j] * x[j] over n (a multiple of kLanes = 8) in float32: 8 partial sums (lane l takes j = l
// mod 8), combined in a fixed order at the end. Written with GCC/Clang vector types so that every
// build (SSE2 baseline or wider) does the same float operations in the same order.
typedef float V4 __attribute__((vector_size(16)));

inline V4 load4(const float* p) {
  V4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline float combine(V4 lo, V4 hi) {  // lanes 0..3 and 4..7
  const V4 s = lo + hi;
  return (s[0] + s[2]) + (s[1] + s[3]);
}

inline float dot(const float* k, const float* x, int64_t n) {
  V4 lo = {}, hi = {};
  for (int64_t j = 0; j < n; j += kLanes) {
    lo += load4(k + j) * load4(x + j);
    hi += load4(k + j + 4) * load4(x + j + 4);
  }
  return combine(lo, hi);
}

// Four dots at once, each summed exactly as dot() sums it: independent chains hide the add latency.
inline void dot4(const float* const* k, const float* const* x, int64_t n, float* out) {
  V4 lo0 = {}, hi0 = {}, lo1 = {}, hi1 = {}, lo2 = {}, hi2 = {}, lo3 = {}, hi3 = {};
  const float *k0 = k[0], *k1 = k[1], *k2 = k[2], *k3 = k[3];
  const float *x0 = x[0], *x1 = x[1], *x2 = x[2], *x3 = x[3];
  for (int64_t j = 0; j < n; j += kLanes) {
    lo0 += load4(k0 + j) * load4(x0 + j);
    hi0 += load4(k0 + j + 4) * load4(x0 + j + 4);
    lo1 += load4(k1 + j) * load4(x1 + j);
    hi1 += load4(k1 + j + 4) * load4(x1 + j + 4);
    lo2 += load4(k2 + j) * load4(x2 + j);
    hi2 += load4(k2 + j + 4) * load4(x2 + j + 4);
    lo3 += load4(k3 + j) * load4(x3 + j);
    hi3 += load4(k3 + j + 4) * load4(x3 + j + 4);
  }
  out[0] = combine(lo0, hi0);
  out[1] = combine(lo1, hi1);
  out[2] = combine(lo2, hi2);
  out[3] = combine(lo3, hi3);
}

}  // namespace

int64_t SincResampler::output_length(int64_t in_rate, int64_t out_rate, int64_t n) {
  const int64_t g = std::gcd(in_rate, out_rate);
  // torch.ceil(torch.as_tensor(new * length / orig)): Python's true division, in float64.
  return int64_t(std::ceil(double((out_rate / g) * n) / double(in_rate / g)));
}

int64_t SincResampler::target(int64_t n) const {
  return int64_t(std::ceil(double(new_ * n) / double(orig_)));
}

SincResampler::SincResampler(int64_t in_rate, int64_t out_rate, std::string_view what)
    : what_(what) {
  UG_CHECK(in_rate > 0 && out_rate > 0, "{}: cannot resample {} Hz to {} Hz", what_, in_rate,
           out_rate);
  const int64_t g = std::gcd(in_rate, out_rate);
  orig_ = in_rate / g;
  new_ = out_rate / g;
  if (orig_ == new_) {
    identity_ = true;
    return;
  }
  const double base = double(std::min(orig_, new_)) * kRolloff;
  width_ = int64_t(std::ceil(double(kLowpassFilterWidth * orig_) / base));
  const int64_t span = 2 * width_ + orig_;  // torchaudio's taps per phase

  // Phase i's taps with |t| < 6 lie within orig * 6 / base of j = width + orig * i / new.
  const double half = double(orig_) * kLowpassFilterWidth / base;
  const int64_t estimate = (int64_t(2 * half) + 2 + kLanes - 1) / kLanes * kLanes;  // >= taps_
  UG_CHECK(new_ * estimate <= kMaxKernelFloats,
           "{}: cannot resample {} Hz to {} Hz: the reduced ratio {}:{} needs a {} x {} filter table",
           what_, in_rate, out_rate, orig_, new_, new_, estimate);
  std::vector<int64_t> first(static_cast<size_t>(new_)), last(static_cast<size_t>(new_));
  int64_t longest = 1;
  auto scan = [&](int64_t i, auto&& on_tap) {
    const double c = double(width_) + double(orig_) * double(i) / double(new_);
    const int64_t lo = std::max<int64_t>(0, int64_t(std::floor(c - half)) - 2);
    const int64_t hi = std::min<int64_t>(span - 1, int64_t(std::ceil(c + half)) + 2);
    for (int64_t j = lo; j <= hi; ++j) {
      float v;
      if (kernel_tap(i, j, orig_, new_, width_, base, v)) on_tap(j, v);
    }
  };
  for (int64_t i = 0; i < new_; ++i) {
    int64_t f = -1, l = -1;
    scan(i, [&](int64_t j, float) {
      if (f < 0) f = j;
      l = j;
    });
    if (f < 0) f = l = std::min<int64_t>(width_, span - 1);  // cannot happen for lpw 6: a lone zero tap
    first[size_t(i)] = f;
    last[size_t(i)] = l;
    longest = std::max(longest, l - f + 1);
  }
  taps_ = (longest + kLanes - 1) / kLanes * kLanes;
  kernel_.assign(size_t(new_ * taps_), 0.0f);
  offset_.resize(size_t(new_));
  for (int64_t i = 0; i < new_; ++i) {
    offset_[size_t(i)] = first[size_t(i)];
    float* row = kernel_.data() + i * taps_;
    scan(i, [&](int64_t j, float v) { row[j - first[size_t(i)]] = v; });
  }
  min_offset_ = *std::min_element(offset_.begin(), offset_.end());
  max_offset_ = *std::max_element(offset_.begin(), offset_.end());
  buf_.assign(size_t(width_), 0.0f);  // the left padding
}

// Appends outputs [n_out_, limit) while the input they read has arrived, then drops the input no
// later output reads.
void SincResampler::produce(int64_t limit, std::vector<float>& out) {
  if (limit > n_out_ && out.capacity() < out.size() + size_t(limit - n_out_))  // grow geometrically
    out.reserve(std::max(out.size() + size_t(limit - n_out_), 2 * out.capacity()));
  const int64_t have = base_ + int64_t(buf_.size());
  int64_t k = n_out_ / new_, i = n_out_ % new_;
  while (n_out_ < limit) {
    const float* kp[4];
    const float* xp[4];
    int count = 0;  // the next (up to) four outputs whose input has arrived
    for (; count < 4 && n_out_ + count < limit; ++count) {
      const int64_t start = k * orig_ + offset_[size_t(i)];
      if (start + taps_ > have) break;
      kp[count] = kernel_.data() + i * taps_;
      xp[count] = buf_.data() + (start - base_);
      if (++i == new_) i = 0, ++k;
    }
    if (count == 0) break;
    if (count == 4) {
      float y[4];
      dot4(kp, xp, taps_, y);
      out.insert(out.end(), y, y + 4);
    } else {
      for (int c = 0; c < count; ++c) out.push_back(dot(kp[c], xp[c], taps_));
    }
    n_out_ += count;
  }
  const int64_t keep = k * orig_ + min_offset_;  // the earliest xpad index a later output reads
  const int64_t drop = std::min<int64_t>(keep - base_, int64_t(buf_.size()));
  if (drop > 0 && drop >= int64_t(buf_.size()) / 2) {  // amortized: each sample moves O(1) times
    buf_.erase(buf_.begin(), buf_.begin() + drop);
    base_ += drop;
  }
}

void SincResampler::push(std::span<const float> in, std::vector<float>& out) {
  if (in.empty()) return;
  if (identity_) {
    out.insert(out.end(), in.begin(), in.end());
    return;
  }
  buf_.insert(buf_.end(), in.begin(), in.end());
  n_in_ += int64_t(in.size());
  produce(target(n_in_), out);  // never beyond the final length, which only grows with n_in_
}

void SincResampler::flush(std::vector<float>& out) {
  if (identity_) return;
  const int64_t limit = target(n_in_);
  if (limit <= n_out_) return;
  // The right padding: zeros up to what the last output reads.
  const int64_t need = (limit - 1) / new_ * orig_ + max_offset_ + taps_;
  const int64_t have = base_ + int64_t(buf_.size());
  if (need > have) buf_.resize(buf_.size() + size_t(need - have), 0.0f);
  produce(limit, out);
}

}  // namespace ug
