// The fp8 KV cache's value format (KvType::Fp8, attention.h): e4m3 bytes. Writers round an f32 value to nearest
// even with saturation at +-448 (what cvt.rn.satfinite does); readers widen two bytes at a time to the bf16 pair
// the tensor-core and CUDA-core kernels compute on (every e4m3 value is exact in f16 and in bf16). Included by .cu
// files only.
// Widening to f16 first: e4m3 -> f16x2 is one hardware conversion for two values.
#pragma once

#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

#include "backend/cuda/attention.h"
#include "backend/cuda/mma.cuh"

namespace ug::cuda {

__device__ __forceinline__ uint8_t to_e4m3(float x) { return __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3); }

// Two e4m3 bytes (the first in the low byte) -> their values as an f16 pair (first in the low half), exactly: one
// instruction. The decode kernel computes on these.
__device__ __forceinline__ uint32_t e4m3x2_to_f16x2(uint16_t bytes) {
  const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(bytes, __NV_E4M3);
  return uint32_t(h.x) | (uint32_t(h.y) << 16);
}

// The low (i = 0) or high (i = 1) half of an f16 pair as f32.
__device__ __forceinline__ float f16x2_at(uint32_t pair, int i) {
  return __half2float(__ushort_as_half(uint16_t(i ? pair >> 16 : pair & 0xffffu)));
}

// Two e4m3 bytes -> their values as a bf16 pair (pack_bf16's layout), exactly. The flash kernel computes on these.
__device__ __forceinline__ uint32_t e4m3x2_to_bf16x2(uint16_t bytes) {
  const uint32_t h = e4m3x2_to_f16x2(bytes);
  return pack_bf16(f16x2_at(h, 0), f16x2_at(h, 1));
}

// x and y scaled by inv (a power of two) as the cache stores them (e4m3 bytes, first in the low byte).
__device__ __forceinline__ uint16_t e4m3x2_of(float x, float y, float inv) {
  return uint16_t(uint16_t(to_e4m3(x * inv)) | uint16_t(uint16_t(to_e4m3(y * inv)) << 8));
}

// Four f32 values from src scaled by inv, as a 32-bit word of e4m3 bytes (the first in the low byte).
__device__ __forceinline__ uint32_t e4m3x4_of(const float* src, float inv) {
  return uint32_t(e4m3x2_of(src[0], src[1], inv)) | (uint32_t(e4m3x2_of(src[2], src[3], inv)) << 16);
}

// One element into a KV cache as the cache's type stores it (kv_store's rule): f32 as is, bf16 rounded to nearest
// even, e4m3 after dividing by `divisor` (keys: k_scale; values: 1).
__device__ __forceinline__ void store_cache_element(void* cache, int64_t at, float x, KvType type, float divisor) {
  if (type == KvType::F32)
    static_cast<float*>(cache)[at] = x;
  else if (type == KvType::Fp8)
    static_cast<uint8_t*>(cache)[at] = to_e4m3(x / divisor);
  else
    static_cast<__nv_bfloat16*>(cache)[at] = __float2bfloat16_rn(x);
}

// Four e4m3 bytes of a 32-bit word -> two bf16 pairs.
__device__ __forceinline__ void e4m3x4_to_bf16(uint32_t word, uint32_t& first, uint32_t& second) {
  first = e4m3x2_to_bf16x2(uint16_t(word & 0xffffu));
  second = e4m3x2_to_bf16x2(uint16_t(word >> 16));
}

// f32 x scaled by inv (a power of two), rounded to e4m3 as the cache stores it, as a bf16 pair with y.
__device__ __forceinline__ uint32_t pack_via_e4m3(float x, float y, float inv) {
  return e4m3x2_to_bf16x2(e4m3x2_of(x, y, inv));
}

}  // namespace ug::cuda
