// The oracle: textbook triple loop, double accumulation, no blocking. Slow on purpose.
#include "backend/cpu/matmul.h"
#include "core/bf16.h"
#include "core/error.h"

namespace ug::cpu {

void matmul_reference(const float* x, int64_t n, const MatrixRef& w, float* y) {
  UG_CHECK(w.dtype == DType::F32 || w.dtype == DType::BF16,
           "matmul_reference: weight [{}, {}] has dtype {}, expected F32 or BF16", w.rows, w.cols,
           dtype_name(w.dtype));
  const auto* wf = static_cast<const float*>(w.data);
  const auto* wb = static_cast<const uint16_t*>(w.data);
  for (int64_t t = 0; t < n; ++t) {
    const float* xt = x + t * w.cols;
    for (int64_t r = 0; r < w.rows; ++r) {
      double acc = 0.0;
      for (int64_t k = 0; k < w.cols; ++k) {
        int64_t i = r * w.cols + k;
        double wv = w.dtype == DType::F32 ? wf[i] : bf16_to_f32(wb[i]);
        acc += double(xt[k]) * wv;
      }
      y[t * w.rows + r] = float(acc);
    }
  }
}

}  // namespace ug::cpu
