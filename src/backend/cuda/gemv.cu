// See gemv.h. One warp per output feature (weight row), up to 8 warps per block, 4 independent 16-byte weight
// loads in flight per lane.
#include <algorithm>
#include <cstdint>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/env_knob.h"
#include "backend/cuda/gemv.h"
#include "backend/cuda/launch.cuh"

namespace ug::cuda {
namespace {

constexpr int kMaxWarps = 8;
// Warps per block (knob UG_GEMV_WARPS, 1-8). When the whole grid is resident at once, the SMs that get one block
// more than the others set the time: n 3,840 in blocks of 8 rows is 480 blocks, 3 or 4 per SM (91% of an even
// spread); in blocks of 2 rows 14 or 15 per SM (97%). Measured on the H200, batch-1 decode of the 12B, same run:
// 8 warps 130.9 / 131.7 t/s, 4 warps 132.5 / 131.9, 2 warps 132.8 / 132.6.
constexpr int kDefaultWarps = 2;
constexpr int kUnroll = 4;

__device__ __forceinline__ float bf16_lo(uint32_t v) { return __uint_as_float(v << 16); }
__device__ __forceinline__ float bf16_hi(uint32_t v) { return __uint_as_float(v & 0xffff0000u); }

template <int M>
__device__ __forceinline__ void fma8(float (&acc)[M], const uint4& wv, const float* x, int64_t k, int64_t at) {
  const float w[8] = {bf16_lo(wv.x), bf16_hi(wv.x), bf16_lo(wv.y), bf16_hi(wv.y),
                      bf16_lo(wv.z), bf16_hi(wv.z), bf16_lo(wv.w), bf16_hi(wv.w)};
#pragma unroll
  for (int r = 0; r < M; ++r) {
    const float4 a = *reinterpret_cast<const float4*>(x + r * k + at);
    const float4 b = *reinterpret_cast<const float4*>(x + r * k + at + 4);
    acc[r] += w[0] * a.x + w[1] * a.y + w[2] * a.z + w[3] * a.w + w[4] * b.x + w[5] * b.y + w[6] * b.z + w[7] * b.w;
  }
}

template <int M>
__global__ void __launch_bounds__(kMaxWarps * 32) gemv_kernel(GemvParams p) {
  pdl_launch_dependents();
  const int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = int(threadIdx.x % 32);
  if (row >= p.n) {
    pdl_wait();
    return;
  }
  const uint4* w = reinterpret_cast<const uint4*>(p.w + row * p.k);
  const int64_t vecs = p.k / 8;
  float acc[M];
#pragma unroll
  for (int r = 0; r < M; ++r) acc[r] = 0.0f;
  for (int64_t base = lane; base < vecs; base += 32 * kUnroll) {
    uint4 wv[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t i = base + 32 * u;
      wv[u] = i < vecs ? __ldcs(w + i) : make_uint4(0, 0, 0, 0);
    }
    // The first weight loads are in flight while the kernel that writes x finishes.
    if (base == lane) pdl_wait();
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t i = base + 32 * u;
      if (i < vecs) fma8<M>(acc, wv[u], p.x, p.k, i * 8);
    }
  }
  if (lane >= vecs) pdl_wait();  // a lane that loaded no weight (k < 256)
#pragma unroll
  for (int r = 0; r < M; ++r) {
    float v = acc[r];
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    if (lane == 0) p.y[r * p.n + row] = v;
  }
}

template <int M>
void launch(const GemvParams& p, cudaStream_t stream) {
  static const int warps = int(std::min<int64_t>(kMaxWarps, env_knob("UG_GEMV_WARPS", kDefaultWarps)));
  launch_kernel("gemv_kernel", gemv_kernel<M>, unsigned((p.n + warps - 1) / warps), unsigned(warps * 32), 0, stream, p);
}

}  // namespace

void gemv(const GemvParams& p, cudaStream_t stream) {
  const char* op = "gemv";
  UG_CUDA_REQUIRE(p.w && p.x && p.y, op, "w, x and y must be set");
  UG_CUDA_REQUIRE(p.m >= 1 && p.m <= kGemvMaxRows, op,
                  "m " + std::to_string(p.m) + " outside 1.." + std::to_string(kGemvMaxRows));
  UG_CUDA_REQUIRE(p.n >= 1 && p.n < 0x7fffffff, op, "n " + std::to_string(p.n) + " out of range");
  UG_CUDA_REQUIRE(p.k >= 8 && p.k % 8 == 0, op, "k " + std::to_string(p.k) + " must be a positive multiple of 8");
  UG_CUDA_REQUIRE(reinterpret_cast<uintptr_t>(p.w) % 16 == 0 && reinterpret_cast<uintptr_t>(p.x) % 16 == 0, op,
                  "w and x must be 16-byte aligned");
  switch (p.m) {
    case 1:
      launch<1>(p, stream);
      break;
    case 2:
      launch<2>(p, stream);
      break;
    case 3:
      launch<3>(p, stream);
      break;
    case 4:
      launch<4>(p, stream);
      break;
    case 5:
      launch<5>(p, stream);
      break;
    case 6:
      launch<6>(p, stream);
      break;
    case 7:
      launch<7>(p, stream);
      break;
    default:
      launch<8>(p, stream);
      break;
  }
}

}  // namespace ug::cuda
