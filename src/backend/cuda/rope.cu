// Rotate-half RoPE. One block per token: each thread owns pairs i (cos/sin computed once per token and
// pair, in double like the CPU oracle) and applies them to every head; for a fixed head consecutive
// threads touch consecutive floats.
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_math.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/ops.h"

namespace ug::cuda {
namespace {

constexpr int kThreads = 128;

__global__ void __launch_bounds__(kThreads) rope_kernel(RopeParams p) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t t = blockIdx.x;
  const int64_t half = p.head_dim / 2;
  float* xt = p.x + t * p.n_heads * p.head_dim;
  for (int64_t i = threadIdx.x; i < half; i += kThreads) {
    const float2 cs = rope_cos_sin(p.positions[t], p.inv_freq[i]);
    const float cf = cs.x, sf = cs.y;
    for (int64_t h = 0; h < p.n_heads; ++h) {
      float* v = xt + h * p.head_dim;
      const float x1 = v[i], x2 = v[i + half];
      v[i] = x1 * cf - x2 * sf;
      v[i + half] = x2 * cf + x1 * sf;
    }
  }
}

__global__ void __launch_bounds__(kThreads) rope_table_kernel(RopeTableParams p) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t at = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (at >= p.rows * p.pairs) return;
  p.table[at] = rope_cos_sin(p.positions[at / p.pairs], p.inv_freq[at % p.pairs]);
}

}  // namespace

void rope_table(const RopeTableParams& p, cudaStream_t stream) {
  UG_CUDA_REQUIRE(p.positions && p.inv_freq && p.table, "rope_table", "positions, inv_freq and table must be set");
  UG_CUDA_REQUIRE(p.rows >= 1 && p.pairs >= 1 && p.rows * p.pairs / kThreads < 0x7fffffff, "rope_table",
                  "rows " + std::to_string(p.rows) + " x pairs " + std::to_string(p.pairs) + " out of range");
  launch_kernel("rope_table_kernel", rope_table_kernel, unsigned((p.rows * p.pairs + kThreads - 1) / kThreads),
                kThreads, 0, stream, p);
}

void rope(const RopeParams& p, cudaStream_t stream) {
  UG_CUDA_REQUIRE(p.x && p.positions && p.inv_freq, "rope", "x, positions and inv_freq must be set");
  UG_CUDA_REQUIRE(
      p.head_dim >= 2 && p.head_dim % 2 == 0, "rope",
      "head_dim " + std::to_string(p.head_dim) + " must be even and >= 2 (rotate-half pairs i, i + head_dim/2)");
  UG_CUDA_REQUIRE(p.n_tokens >= 1 && p.n_tokens <= 0x7fffffff, "rope",
                  "n_tokens " + std::to_string(p.n_tokens) + " outside [1, 2^31)");
  UG_CUDA_REQUIRE(p.n_heads >= 1, "rope", "n_heads " + std::to_string(p.n_heads) + " must be >= 1");
  launch_kernel("rope_kernel", rope_kernel, unsigned(p.n_tokens), kThreads, 0, stream, p);
}

}  // namespace ug::cuda
