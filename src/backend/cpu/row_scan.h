// Vectorized scans of a logits row (262,144 floats a token on the real vocabulary) for greedy decoding's argmax:
// a plain left-to-right loop that tracks the best index runs at ~1 ns a value, as long as the lm_head itself on
// small models.
#pragma once

#include <cstdint>

namespace ug::cpu {

struct RowMax {
  float max = 0.0f;  // the largest value of x[0, n) (-inf when n == 0 or all are -inf); meaningless when bad
  bool bad = false;  // some value is NaN or +inf
};

RowMax row_max(const float* x, int64_t n);

// The first i in [0, n) with x[i] == value, or n.
int64_t first_equal(const float* x, int64_t n, float value);

}  // namespace ug::cpu
