// Element-wise ops: GeGLU (gelu_tanh_mul), logit softcap, f32 -> bf16 (plain and two-term split). Grid-stride loops.
#include <cuda_bf16.h>

#include <algorithm>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_math.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/mma.cuh"
#include "backend/cuda/ops.h"

namespace ug::cuda {
namespace {

constexpr int kThreads = 256;

unsigned grid_for(int64_t n) {
  // Enough blocks to fill the chip several times over; the loop covers the rest.
  return unsigned(std::min<int64_t>((n + kThreads - 1) / kThreads, 132 * 32));
}

__global__ void gelu_tanh_mul_kernel(GeluTanhMulParams p) {
  pdl_launch_dependents();
  pdl_wait();
  for (int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x; i < p.n; i += int64_t(gridDim.x) * kThreads)
    p.out[i] = gelu_tanh(p.gate[i]) * p.up[i];
}

__global__ void softcap_kernel(SoftcapParams p) {
  pdl_launch_dependents();
  pdl_wait();
  for (int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x; i < p.n; i += int64_t(gridDim.x) * kThreads)
    p.x[i] = p.cap * tanhf(p.x[i] / p.cap);
}

__global__ void to_bf16_kernel(ToBf16Params p) {
  pdl_launch_dependents();
  pdl_wait();
  for (int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x; i < p.n; i += int64_t(gridDim.x) * kThreads)
    p.dst[i] = __bfloat16_as_ushort(__float2bfloat16_rn(p.src[i]));
}

__global__ void to_bf16_split_kernel(ToBf16SplitParams p) {
  pdl_launch_dependents();
  pdl_wait();
  for (int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x; i < p.n; i += int64_t(gridDim.x) * kThreads) {
    const Bf16Terms t = bf16_terms(p.src[i]);
    p.hi[i] = t.hi;
    p.lo[i] = t.lo;
  }
}

__global__ void sum_chunks_kernel(SumChunksParams p) {
  pdl_launch_dependents();
  pdl_wait();
  for (int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x; i < p.n; i += int64_t(gridDim.x) * kThreads) {
    float sum = p.src[i];
    for (int64_t c = 1; c < p.chunks; ++c) sum += p.src[c * p.n + i];
    p.dst[i] = sum;
  }
}

}  // namespace

void to_bf16_split(const ToBf16SplitParams& p, cudaStream_t stream) {
  UG_CUDA_REQUIRE(p.src && p.hi && p.lo, "to_bf16_split", "src, hi and lo must be set");
  UG_CUDA_REQUIRE(p.n >= 1, "to_bf16_split", "n " + std::to_string(p.n) + " must be >= 1");
  launch_kernel("to_bf16_split_kernel", to_bf16_split_kernel, grid_for(p.n), kThreads, 0, stream, p);
}

void sum_chunks(const SumChunksParams& p, cudaStream_t stream) {
  UG_CUDA_REQUIRE(p.src && p.dst, "sum_chunks", "src and dst must be set");
  UG_CUDA_REQUIRE(p.n >= 1 && p.chunks >= 1, "sum_chunks",
                  "n " + std::to_string(p.n) + " and chunks " + std::to_string(p.chunks) + " must be >= 1");
  launch_kernel("sum_chunks_kernel", sum_chunks_kernel, grid_for(p.n), kThreads, 0, stream, p);
}

void gelu_tanh_mul(const GeluTanhMulParams& p, cudaStream_t stream) {
  UG_CUDA_REQUIRE(p.gate && p.up && p.out, "gelu_tanh_mul", "gate, up and out must be set");
  UG_CUDA_REQUIRE(p.n >= 1, "gelu_tanh_mul", "n " + std::to_string(p.n) + " must be >= 1");
  launch_kernel("gelu_tanh_mul_kernel", gelu_tanh_mul_kernel, grid_for(p.n), kThreads, 0, stream, p);
}

void softcap(const SoftcapParams& p, cudaStream_t stream) {
  UG_CUDA_REQUIRE(p.x, "softcap", "x must be set");
  UG_CUDA_REQUIRE(p.n >= 1, "softcap", "n " + std::to_string(p.n) + " must be >= 1");
  UG_CUDA_REQUIRE(p.cap > 0, "softcap", "cap " + std::to_string(p.cap) + " must be > 0");
  launch_kernel("softcap_kernel", softcap_kernel, grid_for(p.n), kThreads, 0, stream, p);
}

void to_bf16(const ToBf16Params& p, cudaStream_t stream) {
  UG_CUDA_REQUIRE(p.src && p.dst, "to_bf16", "src and dst must be set");
  UG_CUDA_REQUIRE(p.n >= 1, "to_bf16", "n " + std::to_string(p.n) + " must be >= 1");
  launch_kernel("to_bf16_kernel", to_bf16_kernel, grid_for(p.n), kThreads, 0, stream, p);
}

}  // namespace ug::cuda
