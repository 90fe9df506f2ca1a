// Host-side helpers shared by the CUDA tests: random inputs, bf16 rounding, uploads.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "backend/cuda/device_buffer.h"
#include "core/bf16.h"

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

}  // namespace ug::cuda::test
