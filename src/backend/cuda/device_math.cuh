// Device helpers shared by the CUDA kernels (included by .cu files only).
#pragma once

namespace ug::cuda {

// gelu_tanh(z) = 0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))), as the CPU's gelu_tanh_mul.
__device__ __forceinline__ float gelu_tanh(float z) {
  constexpr float kAlpha = 0.7978845608028654f;  // sqrt(2/pi)
  return 0.5f * z * (1.0f + tanhf(kAlpha * (z + 0.044715f * z * z * z)));
}

__device__ __forceinline__ double warp_sum(double v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// Sum of v over the block (kThreads threads, all calling). Safe to call several times in a row.
template <int kThreads>
__device__ double block_sum(double v) {
  __shared__ double warp_sums[kThreads / 32];
  __syncthreads();  // an earlier call's readers are done with warp_sums
  v = warp_sum(v);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = warp_sum(lane < kThreads / 32 ? warp_sums[lane] : 0.0);
    if (lane == 0) warp_sums[0] = v;
  }
  __syncthreads();
  return warp_sums[0];
}

}  // namespace ug::cuda
