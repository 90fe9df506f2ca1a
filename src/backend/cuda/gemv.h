// Decode-shaped matmul: y[m, n] = x[m, k] · wᵀ for a few rows (m <= kGemvMaxRows) with a bf16
// weight [n, k] and f32 activations, f32 accumulation. A batch-1 decode step is bound by reading
// the weights once, which cuBLASLt's tile shapes do poorly at m = 1..8 (0.56 of the copy bandwidth
// measured on the H200): here one warp streams one weight row with 16-byte loads that bypass L1
// (each weight byte is read once per step) while the few activation rows stay in cache. Unlike
// Gemm::run_f32 the activations are not rounded to bf16, so the result equals the CPU's f32 x bf16
// matmul up to f32 summation order.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace ug::cuda {

inline constexpr int64_t kGemvMaxRows = 8;

struct GemvParams {
  const uint16_t* w = nullptr;  // [n, k] bf16 weight, row-major (device memory, 16-byte aligned)
  const float* x = nullptr;     // [m, k] f32 activations, row-major (device memory, 16-byte aligned)
  float* y = nullptr;           // [m, n] f32 output (device memory); must not overlap x
  int64_t m = 0;                // 1 .. kGemvMaxRows
  int64_t n = 0;                // >= 1
  int64_t k = 0;                // >= 8, multiple of 8
};

void gemv(const GemvParams& p, cudaStream_t stream = nullptr);

}  // namespace ug::cuda
