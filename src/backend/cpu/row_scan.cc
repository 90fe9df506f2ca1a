// See row_scan.h. Built like activations.cc (-fno-trapping-math, target clones for the CPU's widest vectors);
// the results are exact (comparisons only), so the clones agree.
#include "backend/cpu/row_scan.h"

#include <cmath>
#include <cstdint>
#include <cstring>

namespace ug::cpu {
namespace {

// 16 floats as one GCC vector: one AVX-512 register, two of AVX2, four of SSE (GCC lowers it per clone). The
// auto-vectorizer does not turn a max-with-index scan into vector code, so it is written with these.
using F32x16 = float __attribute__((vector_size(64)));
using I32x16 = int32_t __attribute__((vector_size(64)));
constexpr int kLanes = 16;

}  // namespace

__attribute__((target_clones("avx512f", "avx2", "default"))) RowMax row_max(const float* x, int64_t n) {
  F32x16 lane_max;
  I32x16 lane_nan{};
  for (int j = 0; j < kLanes; ++j) lane_max[j] = -INFINITY;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    F32x16 v;
    std::memcpy(&v, x + i, sizeof v);
    lane_max = v > lane_max ? v : lane_max;  // NaN never wins: flagged apart
    lane_nan |= v != v;
  }
  RowMax r{.max = -INFINITY};
  for (int j = 0; j < kLanes; ++j) {
    r.max = lane_max[j] > r.max ? lane_max[j] : r.max;
    r.bad |= lane_nan[j] != 0;
  }
  for (; i < n; ++i) {
    r.max = x[i] > r.max ? x[i] : r.max;
    r.bad |= x[i] != x[i];
  }
  r.bad |= r.max == INFINITY;  // +inf shows as the maximum
  return r;
}

__attribute__((target_clones("avx512f", "avx2", "default"))) int64_t first_equal(const float* x, int64_t n,
                                                                                 float value) {
  constexpr int64_t kBlock = 64;  // compared as a whole (vectorized), then searched when it holds the value
  int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    int hit = 0;
    for (int64_t j = 0; j < kBlock; ++j) hit |= x[i + j] == value;
    if (hit) break;
  }
  for (; i < n; ++i)
    if (x[i] == value) return i;
  return n;
}

}  // namespace ug::cpu
