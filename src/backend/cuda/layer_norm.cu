// LayerNorm with optional pre-adds (the vision embedder's three LayerNorms, ops.h: layer_norm). One block per row;
// mean and variance in double over the f32 inputs, as cpu::layer_norm_to.
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_math.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/ops.h"

namespace ug::cuda {
namespace {

constexpr int kThreads = 256;

// The normalised input element: x + add + (table[a] + table[b]), in the CPU embedder's order.
__device__ float input_at(const LayerNormParams& p, const float* x, const float* ta, const float* tb, int64_t i) {
  float v = x[i];
  if (p.add) v += p.add[i];
  if (ta) v += ta[i] + tb[i];
  return v;
}

__global__ void __launch_bounds__(kThreads) layer_norm_kernel(LayerNormParams p) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t row = blockIdx.x;
  const float* x = p.x + row * p.dim;
  const float* ta = p.table ? p.table + int64_t(p.table_rows_a[row]) * p.dim : nullptr;
  const float* tb = p.table ? p.table + int64_t(p.table_rows_b[row]) * p.dim : nullptr;
  double sum = 0;
  for (int64_t i = threadIdx.x; i < p.dim; i += kThreads) sum += input_at(p, x, ta, tb, i);
  const double mean = block_sum<kThreads>(sum) / double(p.dim);
  double var = 0;
  for (int64_t i = threadIdx.x; i < p.dim; i += kThreads) {
    const double d = input_at(p, x, ta, tb, i) - mean;
    var += d * d;
  }
  var = block_sum<kThreads>(var);
  const float inv = float(1.0 / sqrt(var / double(p.dim) + p.eps));
  float* out = p.out + row * p.dim;
  for (int64_t i = threadIdx.x; i < p.dim; i += kThreads)
    out[i] = float(double(input_at(p, x, ta, tb, i)) - mean) * inv * p.weight[i] + p.bias[i];
}

}  // namespace

void layer_norm(const LayerNormParams& p, cudaStream_t stream) {
  UG_CUDA_REQUIRE(p.x && p.out && p.weight && p.bias, "layer_norm", "x, out, weight and bias must be set");
  UG_CUDA_REQUIRE(p.x != p.out, "layer_norm", "out must not be x (each element is read three times)");
  UG_CUDA_REQUIRE(p.rows >= 1 && p.rows <= 0x7fffffff, "layer_norm",
                  "rows " + std::to_string(p.rows) + " outside [1, 2^31)");
  UG_CUDA_REQUIRE(p.dim >= 1, "layer_norm", "dim " + std::to_string(p.dim) + " must be >= 1");
  UG_CUDA_REQUIRE(p.eps > 0, "layer_norm", "eps " + std::to_string(p.eps) + " must be > 0");
  UG_CUDA_REQUIRE(!p.table || (p.table_rows_a && p.table_rows_b), "layer_norm", "table needs table_rows_a and _b");
  launch_kernel("layer_norm_kernel", layer_norm_kernel, unsigned(p.rows), kThreads, 0, stream, p);
}

}  // namespace ug::cuda
