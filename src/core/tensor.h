// Plain views over memory owned elsewhere (a mapped checkpoint, a buffer). No ownership, no math.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace ug {

// A row-major matrix [rows, cols], e.g. a Linear weight stored PyTorch-style [out_features, in_features].
struct MatrixRef {
  const void* data = nullptr;
  DType dtype = DType::F32;  // F32 or BF16 for weights used by matmul
  int64_t rows = 0;
  int64_t cols = 0;
};

}  // namespace ug
