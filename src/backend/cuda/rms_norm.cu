// RMSNorm (+ optional weight, + optional fused residual add). One block per row.
#include <cuda_bf16.h>

#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_math.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/ops.h"

namespace ug::cuda {
namespace {

constexpr int kThreads = 256;

template <WeightType W>
__device__ float weight_at(const void* w, int64_t i) {
  if constexpr (W == WeightType::F32) return static_cast<const float*>(w)[i];
  if constexpr (W == WeightType::BF16) return __bfloat162float(static_cast<const __nv_bfloat16*>(w)[i]);
  return 1.0f;
}

template <WeightType W, bool kResidual>
__global__ void __launch_bounds__(kThreads) rms_norm_kernel(RmsNormParams p) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t row = blockIdx.x;
  const float* x = p.x + row * p.dim;
  float* out = p.out + row * p.dim;
  double ss = 0;
  for (int64_t i = threadIdx.x; i < p.dim; i += kThreads) ss += double(x[i]) * x[i];
  ss = block_sum<kThreads>(ss);
  const float inv = float(1.0 / sqrt(ss / double(p.dim) + p.eps));
  const float* res = kResidual ? p.residual + row * p.dim : nullptr;
  for (int64_t i = threadIdx.x; i < p.dim; i += kThreads) {
    float y = x[i] * inv;
    if constexpr (W != WeightType::None) y = y * weight_at<W>(p.weight, i);
    if constexpr (kResidual) y = res[i] + y;
    out[i] = y;
  }
}

template <WeightType W>
void launch(const RmsNormParams& p, cudaStream_t stream) {
  launch_kernel("rms_norm_kernel", p.residual ? rms_norm_kernel<W, true> : rms_norm_kernel<W, false>, unsigned(p.rows),
                kThreads, 0, stream, p);
}

}  // namespace

void rms_norm(const RmsNormParams& p, cudaStream_t stream) {
  UG_CUDA_REQUIRE(p.x && p.out, "rms_norm", "x and out must be set");
  UG_CUDA_REQUIRE(p.rows >= 1 && p.rows <= 0x7fffffff, "rms_norm",
                  "rows " + std::to_string(p.rows) + " outside [1, 2^31)");
  UG_CUDA_REQUIRE(p.dim >= 1, "rms_norm", "dim " + std::to_string(p.dim) + " must be >= 1");
  UG_CUDA_REQUIRE(p.eps > 0, "rms_norm", "eps " + std::to_string(p.eps) + " must be > 0");
  UG_CUDA_REQUIRE((p.weight == nullptr) == (p.weight_type == WeightType::None), "rms_norm",
                  "weight pointer and weight_type disagree (weight_type None iff weight is nullptr)");
  switch (p.weight_type) {
    case WeightType::None:
      launch<WeightType::None>(p, stream);
      break;
    case WeightType::F32:
      launch<WeightType::F32>(p, stream);
      break;
    case WeightType::BF16:
      launch<WeightType::BF16>(p, stream);
      break;
    default:
      throw_unsupported("rms_norm", "weight_type " + std::to_string(int(p.weight_type)) + " is not None/F32/BF16");
  }
}

}  // namespace ug::cuda
