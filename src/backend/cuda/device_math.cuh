// Device helpers shared by the CUDA kernels (included by .cu files only).
#pragma once

#include <cstdint>

namespace ug::cuda {

// gelu_tanh(z) = 0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))), as the CPU's gelu_tanh_mul.
__device__ __forceinline__ float gelu_tanh(float z) {
  constexpr float kAlpha = 0.7978845608028654f;  // sqrt(2/pi)
  return 0.5f * z * (1.0f + tanhf(kAlpha * (z + 0.044715f * z * z * z)));
}

// RoPE's (cos, sin) of pair i at a position: the angle as the f32 product the reference computes, its cosine and
// sine in double, rounded to f32 (as the CPU oracle).
__device__ __forceinline__ float2 rope_cos_sin(int64_t position, float inv_freq) {
  const float angle = float(position) * inv_freq;
  double s, c;
  sincos(double(angle), &s, &c);
  return make_float2(float(c), float(s));
}

__device__ __forceinline__ void add_to(float& sum, float x) { sum += x; }
__device__ __forceinline__ void add_to(float4& sum, const float4& x) {
  sum.x += x.x;
  sum.y += x.y;
  sum.z += x.z;
  sum.w += x.w;
}

// The N elements (floats, or 16-byte aligned float4s) at float offsets off(j) (valid(j); else zeros) that a thread
// owns of a matrix held as partial chunks (F32Chunks in ops.h: data, chunks, stride), each summed in chunk order as
// sum_chunks does. Every load of a group of up to four chunks is issued before the first add: the kernels reading a
// GEMM's partials are latency-bound, so four chunks cost one memory round trip, not four.
template <typename T, int N, typename Off, typename Valid>
__device__ __forceinline__ void load_chunked(T (&v)[N], const float* data, int64_t chunks, int64_t stride, Off off,
                                             Valid valid) {
  constexpr int kGroup = 3;  // chunks loaded together after the first
  const auto at = [&](int64_t c, int j) { return *reinterpret_cast<const T*>(data + c * stride + off(j)); };
#pragma unroll
  for (int j = 0; j < N; ++j) v[j] = valid(j) ? at(0, j) : T{};
  for (int64_t c0 = 1; c0 < chunks; c0 += kGroup) {
    T t[kGroup][N];
#pragma unroll
    for (int q = 0; q < kGroup; ++q)
#pragma unroll
      for (int j = 0; j < N; ++j) t[q][j] = c0 + q < chunks && valid(j) ? at(c0 + q, j) : T{};
#pragma unroll
    for (int q = 0; q < kGroup; ++q)
      if (c0 + q < chunks)
#pragma unroll
        for (int j = 0; j < N; ++j) add_to(v[j], t[q][j]);
  }
}

template <typename T, typename Op>
__device__ __forceinline__ T warp_reduce(T v, Op op) {
  for (int off = 16; off > 0; off >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}

__device__ __forceinline__ double warp_sum(double v) {
  return warp_reduce(v, [](double a, double b) { return a + b; });
}

// op over v of every thread of the block (kThreads threads, all calling; identity: what idle lanes contribute).
// Safe to call several times in a row.
template <int kThreads, typename T, typename Op>
__device__ T block_reduce(T v, Op op, T identity) {
  __shared__ T warp_vals[kThreads / 32];
  __syncthreads();  // an earlier call's readers are done with warp_vals
  v = warp_reduce(v, op);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_vals[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = warp_reduce(lane < kThreads / 32 ? warp_vals[lane] : identity, op);
    if (lane == 0) warp_vals[0] = v;
  }
  __syncthreads();
  return warp_vals[0];
}

template <int kThreads>
__device__ double block_sum(double v) {
  return block_reduce<kThreads>(
      v, [](double a, double b) { return a + b; }, 0.0);
}

}  // namespace ug::cuda
