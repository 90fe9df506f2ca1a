// Device helpers shared by the CUDA kernels (included by .cu files only).
#pragma once

namespace ug::cuda {

// gelu_tanh(z) = 0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))), as the CPU's gelu_tanh_mul.
__device__ __forceinline__ float gelu_tanh(float z) {
  constexpr float kAlpha = 0.7978845608028654f;  // sqrt(2/pi)
  return 0.5f * z * (1.0f + tanhf(kAlpha * (z + 0.044715f * z * z * z)));
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
