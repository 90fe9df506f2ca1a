// The one matmul entry of the CPU backend: every Linear goes through matmul().
//   y[n, w.rows] = x[n, w.cols] · wᵀ
// x and y are float32 row-major with row strides w.cols and w.rows; w is row-major [rows, cols]
// like a PyTorch Linear weight [out, in], dtype F32 or BF16. Math is f32 (bf16 weights are widened
// exactly; activations are never rounded to bf16). y must not overlap x or w.
#pragma once

#include <cstdint>

#include "backend/cpu/cpu_features.h"
#include "core/tensor.h"
#include "core/thread_pool.h"

namespace ug::cpu {

// Dispatches on active_isa(); parallel over output rows (and token blocks for large n). The result
// does not depend on the pool size (bitwise): the partition only decides who computes an element.
void matmul(const float* x, int64_t n, const MatrixRef& w, float* y, ThreadPool& pool);

// Scalar oracle with double accumulation (single-threaded, slow): what the kernels are tested
// against.
void matmul_reference(const float* x, int64_t n, const MatrixRef& w, float* y);

namespace detail {

// What every task of one matmul call shares. Activations are pre-arranged ("prepared") once per
// call into xp: rows padded with zeros to kp columns, and for bf16 weights each block of `step`
// columns reordered evens-then-odds so that a bf16 vector widens with one shift / one mask.
struct MatmulJob {
  const float* xp = nullptr;  // [n, kp] prepared activations
  int64_t kp = 0;             // row stride of xp: cols rounded up to the ISA step
  int64_t n = 0;
  MatrixRef w;
  float* y = nullptr;  // [n, w.rows]
  int64_t kc = 0;      // columns per k-block (multiple of step); partial sums add into y
};

// One ISA's kernel set.
struct MatmulKernels {
  int64_t step;          // columns per vector step (x layout block); 1 = no preparation
  int64_t kc_prefill;    // k-block (keeps a weight slice in L2 for many tokens; same for every n)
  int64_t max_decode_n;  // up to this many tokens: decode-style task split (row chunks only)
  // Computes y[t0:t1, r0:r1] for the job.
  void (*compute)(const MatmulJob& job, int64_t r0, int64_t r1, int64_t t0, int64_t t1);
};

const MatmulKernels& scalar_kernels();
const MatmulKernels& avx2_kernels();    // only call when active_isa() >= Avx2
const MatmulKernels& avx512_kernels();  // only call when active_isa() == Avx512

}  // namespace detail
}  // namespace ug::cpu
