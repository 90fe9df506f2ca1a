// Dispatch and threading for matmul(); the portable (no-SIMD) kernel lives here too.
#include "backend/cpu/matmul.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/bf16.h"
#include "core/error.h"

namespace ug::cpu {
namespace detail {
namespace {

float widen(float v) { return v; }
float widen(uint16_t v) { return bf16_to_f32(v); }

// Portable kernel: one output at a time, 4 partial sums so the adds can overlap. Rows outer so a
// weight row stays in L1 while every token uses it.
template <class Elem>
void scalar_compute(const MatmulJob& job, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
  const int64_t cols = job.w.cols, ldy = job.w.rows;
  const auto* w = static_cast<const Elem*>(job.w.data);
  for (int64_t r = r0; r < r1; ++r) {
    const Elem* wr = w + r * cols;
    for (int64_t t = t0; t < t1; ++t) {
      const float* xt = job.xp + t * job.kp;
      float a[4] = {0, 0, 0, 0};
      int64_t k = 0;
      for (; k + 4 <= cols; k += 4) {
        for (int j = 0; j < 4; ++j) a[j] += xt[k + j] * widen(wr[k + j]);
      }
      for (; k < cols; ++k) a[0] += xt[k] * widen(wr[k]);
      job.y[t * ldy + r] = (a[0] + a[1]) + (a[2] + a[3]);
    }
  }
}

void scalar_dispatch(const MatmulJob& job, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
  if (job.w.dtype == DType::BF16) {
    scalar_compute<uint16_t>(job, r0, r1, t0, t1);
  } else {
    scalar_compute<float>(job, r0, r1, t0, t1);
  }
}

}  // namespace

const MatmulKernels& scalar_kernels() {
  static const MatmulKernels k{
      .step = 1, .kc_prefill = INT64_MAX, .max_decode_n = INT64_MAX, .compute = scalar_dispatch};
  return k;
}

}  // namespace detail

namespace {

const detail::MatmulKernels& kernels_for(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Avx512:
      return detail::avx512_kernels();
    case CpuIsa::Avx2:
      return detail::avx2_kernels();
    case CpuIsa::Scalar:
      break;
  }
  return detail::scalar_kernels();
}

// Pads each row to kp columns with zeros; for bf16 weights each block of `step` columns becomes
// [even columns..., odd columns...], matching how a bf16 vector widens to two f32 vectors.
void prepare_activations(const float* x, int64_t n, int64_t cols, int64_t step, bool bf16,
                         int64_t kp, float* xp) {
  const int64_t half = step / 2;
  for (int64_t t = 0; t < n; ++t) {
    const float* src = x + t * cols;
    float* dst = xp + t * kp;
    if (!bf16) {
      std::memcpy(dst, src, size_t(cols) * sizeof(float));
      std::fill(dst + cols, dst + kp, 0.0f);
      continue;
    }
    for (int64_t b = 0; b < kp; b += step) {
      for (int64_t j = 0; j < half; ++j) {
        int64_t e = b + 2 * j, o = e + 1;
        dst[b + j] = e < cols ? src[e] : 0.0f;
        dst[b + half + j] = o < cols ? src[o] : 0.0f;
      }
    }
  }
}

void validate(const float* x, int64_t n, const MatrixRef& w, const float* y) {
  UG_CHECK(w.dtype == DType::F32 || w.dtype == DType::BF16,
           "matmul: weight [{}, {}] has dtype {}, expected F32 or BF16", w.rows, w.cols,
           dtype_name(w.dtype));
  UG_CHECK(n >= 0 && w.rows >= 0 && w.cols >= 0, "matmul: negative size (n={}, weight [{}, {}])", n,
           w.rows, w.cols);
  UG_CHECK(w.data != nullptr || w.rows * w.cols == 0, "matmul: weight [{}, {}] has no data", w.rows,
           w.cols);
  UG_CHECK((x != nullptr || n * w.cols == 0) && (y != nullptr || n * w.rows == 0),
           "matmul: null activation or output buffer for n={}, weight [{}, {}]", n, w.rows, w.cols);
}

}  // namespace

void matmul(const float* x, int64_t n, const MatrixRef& w, float* y, ThreadPool& pool) {
  validate(x, n, w, y);
  if (n == 0 || w.rows == 0) return;
  if (w.cols == 0) {
    std::fill(y, y + n * w.rows, 0.0f);
    return;
  }
  const detail::MatmulKernels& ker = kernels_for(active_isa());
  detail::MatmulJob job{.xp = x, .kp = w.cols, .n = n, .w = w, .y = y};
  // Per calling thread, reused across calls: decode calls this ~hundreds of times per token.
  thread_local std::vector<float> prepared;
  if (ker.step > 1) {
    job.kp = (w.cols + ker.step - 1) / ker.step * ker.step;
    prepared.resize(size_t(n * job.kp));
    prepare_activations(x, n, w.cols, ker.step, w.dtype == DType::BF16, job.kp, prepared.data());
    job.xp = prepared.data();
  }
  // Few tokens: stream each weight row front to back. Many: k-blocks keep a weight slice cached
  // while every token uses it. The k-block size is the same for every n, so a token's result
  // depends neither on the pool size nor on the other tokens of the call (bitwise): batched
  // decoding gives each sequence exactly what it gets alone.
  const bool decode = n <= ker.max_decode_n;
  job.kc = std::min(ker.kc_prefill, job.kp);

  // Tasks: row chunks (≥ 64 rows; decode: ~4 per thread so the dynamic claiming in pool.run evens
  // out a slow thread) × token chunks (≥ 32 tokens) when rows alone give too few tasks.
  const int64_t want_tasks = int64_t(pool.size()) * 4;
  const int64_t row_chunk = decode ? 64 : 128;
  const int64_t row_tasks = (w.rows + row_chunk - 1) / row_chunk;
  int64_t tok_chunk = n;
  if (!decode && row_tasks < want_tasks) {
    int64_t splits =
        std::min((want_tasks + row_tasks - 1) / row_tasks, std::max<int64_t>(1, n / 32));
    tok_chunk = (n + splits - 1) / splits;
  }
  const int64_t tok_tasks = (n + tok_chunk - 1) / tok_chunk;
  const int64_t rows_per_task =
      decode ? std::max(row_chunk, w.rows / want_tasks / 4 * 4) : row_chunk;
  const int64_t n_row_tasks = (w.rows + rows_per_task - 1) / rows_per_task;
  pool.run(n_row_tasks * tok_tasks, [&](int64_t task) {
    int64_t rt = task / tok_tasks, tt = task % tok_tasks;
    int64_t r0 = rt * rows_per_task, r1 = std::min(w.rows, r0 + rows_per_task);
    int64_t t0 = tt * tok_chunk, t1 = std::min(n, t0 + tok_chunk);
    ker.compute(job, r0, r1, t0, t1);
  });
}

}  // namespace ug::cpu
