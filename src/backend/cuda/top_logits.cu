// Top-k candidates of logits rows (ops.h: top_logits_rows): one block per row finds the k-th largest finite
// logit exactly by a radix select over order-preserving 32-bit keys (four 8-bit digit passes, each a histogram of
// the keys that share the digits found so far), then collects every logit at or above it. The row is read five
// times from L2 / HBM by one SM: tens of microseconds per step whatever the batch, against a 1 MB copy and a host
// selection per sampled sequence.
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/ops.h"

namespace ug::cuda {
namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr int kBins = 256;
constexpr uint32_t kNoBin = 0xffffffffu;

// Larger float -> larger key. -0 maps to +0's key: they compare equal as floats, and the host's top-k keeps both.
__device__ uint32_t order_key(float x) {
  const uint32_t u = x == 0.0f ? 0u : __float_as_uint(x);
  return (u & 0x80000000u) ? ~u : u | 0x80000000u;
}

__device__ bool is_excluded(const int32_t* excluded, int n_excluded, int32_t id) {
  for (int e = 0; e < n_excluded; ++e)
    if (excluded[e] == id) return true;
  return false;
}

// Inclusive scan of one value per thread over threads 0..255 (8 warps); warp_totals: [8] shared scratch.
__device__ uint32_t scan_256(uint32_t v, uint32_t* warp_totals) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int off = 1; off < 32; off <<= 1) {
    const uint32_t up = __shfl_up_sync(0xffffffffu, v, off);
    if (lane >= off) v += up;
  }
  if (lane == 31) warp_totals[warp] = v;
  asm volatile("bar.sync 1, 256;");  // threads 0..255 only
  for (int w = 0; w < warp; ++w) v += warp_totals[w];
  return v;
}

__global__ void __launch_bounds__(kThreads) top_logits_kernel(TopLogitsRowsParams p) {
  __shared__ uint32_t hist[kWarps][kBins];  // per-warp histograms: the top digits of a row share few bins
  __shared__ int32_t excluded[kArgmaxMaxExcluded];
  __shared__ uint32_t warp_totals[8];
  __shared__ int n_excluded, bad, found;
  __shared__ uint32_t prefix, remaining, total;
  const float* x = p.x + int64_t(blockIdx.x) * p.n;
  int32_t* out = p.out + int64_t(blockIdx.x) * (1 + 2 * p.capacity);
  const int k = p.k[blockIdx.x];
  const int n = int(p.n);
  if (k <= 0) {
    if (threadIdx.x == 0) out[0] = 0;
    return;
  }
  if (threadIdx.x == 0) {
    n_excluded = p.excluded_at ? p.excluded_at[blockIdx.x + 1] - p.excluded_at[blockIdx.x] : 0;
    bad = found = 0;
    prefix = 0;
    remaining = uint32_t(k);
  }
  __syncthreads();
  for (int i = int(threadIdx.x); i < n_excluded; i += kThreads) excluded[i] = p.excluded_ids[p.excluded_at[blockIdx.x] + i];
  __syncthreads();
  // An excluded id listed twice is taken out of the histograms once.
  const bool corrects = int(threadIdx.x) < n_excluded && excluded[threadIdx.x] >= 0 && excluded[threadIdx.x] < n &&
                        !is_excluded(excluded, int(threadIdx.x), excluded[threadIdx.x]);
  uint32_t mask = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    const uint32_t want = prefix, r = remaining;  // read before this pass's one thread updates them
    for (int i = int(threadIdx.x); i < kWarps * kBins; i += kThreads) (&hist[0][0])[i] = 0;
    __syncthreads();
    uint32_t* mine = hist[threadIdx.x >> 5];
#pragma unroll 4
    for (int base = 0; base < n; base += kThreads) {  // uniform trip count: whole warps reach the match below
      const int i = base + int(threadIdx.x);
      uint32_t bin = kNoBin;
      if (i < n) {
        const float v = x[i];
        if (isfinite(v)) {
          const uint32_t key = order_key(v);
          if ((key & mask) == want) bin = (key >> shift) & 0xffu;
        } else if (shift == 24 && v != -INFINITY && !is_excluded(excluded, n_excluded, i)) {
          bad = 1;  // -inf is a masked id; NaN / +inf is an error unless the id is excluded
        }
      }
      // Most of a row falls in a few bins: one atomic per distinct bin of the warp, not 32 serialized ones.
      const unsigned peers = __match_any_sync(0xffffffffu, bin);
      if (bin != kNoBin && int(threadIdx.x & 31) == __ffs(peers) - 1) atomicAdd(&mine[bin], uint32_t(__popc(peers)));
    }
    __syncthreads();
    if (corrects) {  // excluded ids were counted above (checking each element against the list would cost more)
      const float v = x[excluded[threadIdx.x]];
      const uint32_t key = order_key(v);
      if (isfinite(v) && (key & mask) == want) atomicSub(&hist[0][(key >> shift) & 0xffu], 1u);
    }
    __syncthreads();
    if (threadIdx.x < kBins) {
      // Thread t holds the bin of digit 255 - t, so the inclusive scan counts the keys at or above that digit.
      uint32_t c = 0;
      for (int w = 0; w < kWarps; ++w) c += hist[w][kBins - 1 - threadIdx.x];
      const uint32_t at_or_above = scan_256(c, warp_totals);
      if (shift == 24 && threadIdx.x == kBins - 1) total = at_or_above;
      if (at_or_above >= r && at_or_above - c < r) {
        prefix = want | (uint32_t(kBins - 1 - threadIdx.x) << shift);
        remaining = r - (at_or_above - c);
      }
    }
    __syncthreads();
    if (total <= uint32_t(k)) break;  // every finite logit is a candidate
    mask |= 0xffu << shift;
  }
  const uint32_t threshold = total <= uint32_t(k) ? 0u : prefix;
  const int64_t cap = p.capacity;
  for (int i = int(threadIdx.x); i < n; i += kThreads) {
    const float v = x[i];
    if (!isfinite(v) || order_key(v) < threshold || is_excluded(excluded, n_excluded, i)) continue;
    const int slot = atomicAdd(&found, 1);
    if (slot < cap) {
      out[1 + slot] = i;
      out[1 + cap + slot] = __float_as_int(v);
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) out[0] = bad ? -1 : found;
}

}  // namespace

void top_logits_rows(const TopLogitsRowsParams& p, cudaStream_t stream) {
  UG_CUDA_REQUIRE(p.x && p.k && p.out, "top_logits_rows", "x, k and out must be set");
  UG_CUDA_REQUIRE(p.rows >= 1 && p.rows < 0x7fffffff && p.n >= 1 && p.n < 0x7fffffff, "top_logits_rows",
                  "rows " + std::to_string(p.rows) + " / n " + std::to_string(p.n) + " out of range");
  UG_CUDA_REQUIRE(p.capacity >= 1 && p.capacity <= p.n, "top_logits_rows",
                  "capacity " + std::to_string(p.capacity) + " outside [1, n = " + std::to_string(p.n) + "]");
  UG_CUDA_REQUIRE(p.max_excluded >= 0 && p.max_excluded <= kArgmaxMaxExcluded && (p.max_excluded == 0 || p.excluded_at),
                  "top_logits_rows",
                  "excluded ids per row " + std::to_string(p.max_excluded) + " exceed " +
                      std::to_string(kArgmaxMaxExcluded) + " (or excluded_at is not set)");
  top_logits_kernel<<<unsigned(p.rows), kThreads, 0, stream>>>(p);
  UG_CUDA_CHECK_LAUNCH("top_logits_kernel");
}

}  // namespace ug::cuda
