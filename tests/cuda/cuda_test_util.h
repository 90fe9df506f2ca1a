// Host-side helpers shared by the CUDA tests: random inputs, bf16 rounding, uploads.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_buffer.h"
#include "core/bf16.h"
#include "core/error.h"

namespace ug::cuda::test {

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -2.0f, float hi = 2.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

inline std::vector<uint16_t> to_bf16_host(const std::vector<float>& v) {
  std::vector<uint16_t> b(v.size());
  for (size_t i = 0; i < v.size(); ++i) b[i] = f32_to_bf16(v[i]);
  return b;
}

template <typename T>
DeviceBuffer<T> upload(const std::vector<T>& v) {
  return DeviceBuffer<T>(std::span<const T>(v));
}

// Poisons a device buffer with NaN bytes so that an element the kernel fails to write shows up.
template <typename T>
void poison(DeviceBuffer<T>& b) {
  UG_CUDA_CHECK(cudaMemset(b.data(), 0xff, b.bytes()));
}

// The message of the ug::Error fn throws, or "(no error)".
inline std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// e4m3 (the fp8 KV cache's format): sign, 4 exponent bits (bias 7), 3 mantissa bits; 0x7f / 0xff are NaN.
inline float e4m3_value(uint8_t b) {
  const int e = (b >> 3) & 15, m = b & 7;
  if (e == 15 && m == 7) return std::numeric_limits<float>::quiet_NaN();
  const double mag = e == 0 ? std::ldexp(m / 8.0, -6) : std::ldexp(1.0 + m / 8.0, e - 7);
  return float(b & 0x80 ? -mag : mag);
}

// x rounded to the nearest e4m3 value (ties to the even code), saturating at +-448 (cvt.rn.satfinite), by search
// over the 127 finite magnitudes: slow and obviously right.
inline uint8_t e4m3_bits(float x) {
  if (std::isnan(x)) return 0x7f;
  const double a = std::fabs(double(x));
  const uint8_t sign = std::signbit(x) ? 0x80 : 0;
  if (a >= 448.0) return uint8_t(0x7e | sign);  // satfinite: the largest finite value (also for infinities)
  int best = 0;
  for (int c = 1; c < 0x7f; ++c) {
    const double d = std::fabs(e4m3_value(uint8_t(c)) - a), bd = std::fabs(e4m3_value(uint8_t(best)) - a);
    if (d < bd || (d == bd && c % 2 == 0)) best = c;
  }
  return uint8_t(best | sign);
}

// inv_freq as ug::rope_inv_freq (model/decoder.cc) computes it; restated here because this area links only the
// backend. rotating < head_dim / 2 gives "proportional" RoPE (zeros for pairs that do not rotate).
inline std::vector<float> inv_freq_for(int64_t head_dim, double theta, int64_t rotating) {
  std::vector<float> f(size_t(head_dim / 2), 0.0f);
  for (int64_t i = 0; i < rotating; ++i) {
    float exponent = float(2 * i) / float(head_dim);
    f[size_t(i)] = float(1.0 / std::pow(theta, double(exponent)));
  }
  return f;
}

}  // namespace ug::cuda::test
