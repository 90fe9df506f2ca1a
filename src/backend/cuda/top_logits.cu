// Top-k candidates of logits rows (ops.h: top_logits_rows) in two kernels, so that a single row still spreads over
// the whole GPU: (1) a block per chunk of 4096 logits keeps its chunk in shared memory and finds the chunk's k-th
// largest by a radix select over order-preserving 32-bit keys (four 8-bit digit passes, each a histogram of the
// keys that share the digits found so far), writing the chunk's candidates (>= that value, ties kept) to scratch;
// (2) a block per row selects the same way among the chunks' candidates. Exact: the row's k-th largest is at least
// every chunk's k-th largest, so each logit at or above it is a candidate of its chunk.
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/ops.h"

namespace ug::cuda {
namespace {

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;
constexpr int kBins = 256;
constexpr int kChunk = 4096;       // logits per block of the chunk kernel
constexpr int kHists = 8;          // histogram copies, one per pair of warps: a row's top digits crowd a few bins
constexpr int kMergeSlots = 8192;  // candidate slots of a row the merge keeps in shared memory (else reads L2)
constexpr uint32_t kNoBin = 0xffffffffu;
// Keys below kFirstValid mark what is not a candidate: 0 masked (-inf), 1 excluded, 2 NaN / +inf (an error).
constexpr uint32_t kMasked = 0, kExcluded = 1, kBadValue = 2, kFirstValid = 0x00800000u;
constexpr int32_t kBadRow = -1, kOverflow = -2;

// Larger float -> larger key (finite values map to >= kFirstValid). -0 takes +0's key: they compare equal as
// floats, and the host's top-k keeps both.
__device__ uint32_t order_key(float x) {
  if (!isfinite(x)) return x == -INFINITY ? kMasked : kBadValue;
  const uint32_t u = x == 0.0f ? 0u : __float_as_uint(x);
  return (u & 0x80000000u) ? ~u : u | 0x80000000u;
}

struct SelectShared {
  uint32_t hist[kHists][kBins];
  uint32_t warp_totals[kWarps];
  uint32_t prefix, remaining, total;
};

// Inclusive scan of one value per thread over the block (called by every thread).
__device__ uint32_t block_scan(uint32_t v, uint32_t* warp_totals) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int off = 1; off < 32; off <<= 1) {
    const uint32_t up = __shfl_up_sync(0xffffffffu, v, off);
    if (lane >= off) v += up;
  }
  if (lane == 31) warp_totals[warp] = v;
  __syncthreads();
  for (int w = 0; w < warp; ++w) v += warp_totals[w];
  return v;
}

// The k-th largest of the valid keys key_at(0 .. n-1) (invalid: below kFirstValid), or 0 when at most k are valid.
// Called by the whole block; sh is free again after it returns.
template <typename KeyAt>
__device__ uint32_t kth_largest_key(KeyAt key_at, int n, uint32_t k, SelectShared& sh) {
  if (threadIdx.x == 0) {
    sh.prefix = 0;
    sh.remaining = k;
  }
  uint32_t mask = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    __syncthreads();
    const uint32_t want = sh.prefix, r = sh.remaining;  // read before this pass's one thread updates them
    for (int i = int(threadIdx.x); i < kHists * kBins; i += kThreads) (&sh.hist[0][0])[i] = 0;
    __syncthreads();
    uint32_t* mine = sh.hist[(threadIdx.x >> 5) % kHists];
    for (int base = 0; base < n; base += kThreads) {  // uniform trip count: whole warps reach the match below
      const int i = base + int(threadIdx.x);
      uint32_t bin = kNoBin;
      if (i < n) {
        const uint32_t key = key_at(i);
        if (key >= kFirstValid && (key & mask) == want) bin = (key >> shift) & 0xffu;
      }
      // One shared-memory atomic per distinct bin of the warp, not up to 32 serialized ones.
      const unsigned peers = __match_any_sync(0xffffffffu, bin);
      if (bin != kNoBin && int(threadIdx.x & 31) == __ffs(peers) - 1) atomicAdd(&mine[bin], uint32_t(__popc(peers)));
    }
    __syncthreads();
    // Thread t < 256 holds the bin of digit 255 - t, so the inclusive scan counts the keys at or above that digit.
    uint32_t c = 0;
    if (threadIdx.x < kBins)
      for (int h = 0; h < kHists; ++h) c += sh.hist[h][kBins - 1 - threadIdx.x];
    const uint32_t at_or_above = block_scan(c, sh.warp_totals);
    if (threadIdx.x < kBins) {
      if (shift == 24 && threadIdx.x == kBins - 1) sh.total = at_or_above;
      if (at_or_above >= r && at_or_above - c < r) {
        sh.prefix = want | (uint32_t(kBins - 1 - threadIdx.x) << shift);
        sh.remaining = r - (at_or_above - c);
      }
    }
    __syncthreads();
    if (sh.total <= k) return 0;  // every valid key is a candidate
    mask |= 0xffu << shift;
  }
  return sh.prefix;
}

// Rows of candidates: [count, ids[capacity], value bits[capacity]].
struct CandidateRow {
  int32_t* base;
  int64_t capacity;
  __device__ void put(int slot, int32_t id, float value) const {
    if (slot < capacity) {
      base[1 + slot] = id;
      base[1 + capacity + slot] = __float_as_int(value);
    }
  }
  __device__ void finish(bool bad, int found) const { base[0] = bad ? kBadRow : found > capacity ? kOverflow : found; }
};

__global__ void __launch_bounds__(kThreads) chunk_top_kernel(TopLogitsRowsParams p) {
  pdl_launch_dependents();
  pdl_wait();
  __shared__ uint32_t keys[kChunk];
  __shared__ SelectShared sh;
  __shared__ int bad, found;
  const int row = int(blockIdx.y), chunk = int(blockIdx.x);
  const CandidateRow out{p.scratch + (int64_t(row) * gridDim.x + chunk) * (1 + 2 * p.capacity), p.capacity};
  const int k = p.k[row];
  if (k <= 0) {
    if (threadIdx.x == 0) out.finish(false, 0);
    return;
  }
  const int64_t begin = int64_t(chunk) * kChunk;
  const int len = int(p.n - begin < kChunk ? p.n - begin : kChunk);
  const float* x = p.x + int64_t(row) * p.n + begin;
  if (threadIdx.x == 0) bad = found = 0;
  for (int i = int(threadIdx.x); i < len; i += kThreads) keys[i] = order_key(x[i]);
  __syncthreads();
  if (p.excluded_at) {  // excluded ids are no candidates, and a NaN there is no error
    const int32_t at = p.excluded_at[row], n_excluded = p.excluded_at[row + 1] - at;
    for (int e = int(threadIdx.x); e < n_excluded; e += kThreads) {
      const int64_t id = p.excluded_ids[at + e];
      if (id >= begin && id < begin + len) keys[id - begin] = kExcluded;
    }
    __syncthreads();
  }
  for (int i = int(threadIdx.x); i < len; i += kThreads)
    if (keys[i] == kBadValue) bad = 1;
  const uint32_t threshold = max(kth_largest_key([&](int i) { return keys[i]; }, len, uint32_t(k), sh), kFirstValid);
  for (int i = int(threadIdx.x); i < len; i += kThreads)
    if (keys[i] >= threshold) out.put(atomicAdd(&found, 1), int32_t(begin + i), x[i]);
  __syncthreads();
  if (threadIdx.x == 0) out.finish(bad != 0, found);
}

__global__ void __launch_bounds__(kThreads) merge_top_kernel(TopLogitsRowsParams p, int chunks) {
  pdl_launch_dependents();
  pdl_wait();
  __shared__ uint32_t keys[kMergeSlots];
  __shared__ SelectShared sh;
  __shared__ int bad, overflow, found;
  const int row = int(blockIdx.x);
  const int64_t stride = 1 + 2 * p.capacity;
  const CandidateRow out{p.out + int64_t(row) * stride, p.capacity};
  const int k = p.k[row];
  if (k <= 0) {
    if (threadIdx.x == 0) out.finish(false, 0);
    return;
  }
  const int32_t* in = p.scratch + int64_t(row) * chunks * stride;
  if (threadIdx.x == 0) bad = overflow = found = 0;
  __syncthreads();
  for (int c = int(threadIdx.x); c < chunks; c += kThreads) {
    if (in[c * stride] == kBadRow) bad = 1;
    if (in[c * stride] == kOverflow) overflow = 1;
  }
  __syncthreads();
  if (bad || overflow) {
    if (threadIdx.x == 0) out.finish(bad != 0, bad ? 0 : int(p.capacity) + 1);
    return;
  }
  // Slot s is candidate s % capacity of chunk s / capacity (valid below the chunk's count). The selection reads
  // each slot's key five times: from shared memory when the slots fit (the 262k vocabulary with k <= 64).
  const int slots = chunks * int(p.capacity);
  auto key_in_l2 = [&](int s) {
    const int32_t* c = in + (s / p.capacity) * stride;
    const int j = int(s % p.capacity);
    return j < c[0] ? order_key(__int_as_float(c[1 + p.capacity + j])) : kMasked;
  };
  const bool staged = slots <= kMergeSlots;
  if (staged)
    for (int s = int(threadIdx.x); s < slots; s += kThreads) keys[s] = key_in_l2(s);
  auto key_at = [&](int s) { return staged ? keys[s] : key_in_l2(s); };
  const uint32_t threshold = max(kth_largest_key(key_at, slots, uint32_t(k), sh), kFirstValid);
  for (int s = int(threadIdx.x); s < slots; s += kThreads) {
    if (key_at(s) < threshold) continue;
    const int32_t* c = in + (s / p.capacity) * stride;
    const int j = int(s % p.capacity);
    out.put(atomicAdd(&found, 1), c[1 + j], __int_as_float(c[1 + p.capacity + j]));
  }
  __syncthreads();
  if (threadIdx.x == 0) out.finish(false, found);
}

int64_t chunks_of(int64_t n) { return (n + kChunk - 1) / kChunk; }

}  // namespace

int64_t top_logits_scratch_ints(int64_t rows, int64_t n, int64_t capacity) {
  return rows * chunks_of(n) * (1 + 2 * capacity);
}

void top_logits_rows(const TopLogitsRowsParams& p, cudaStream_t stream) {
  UG_CUDA_REQUIRE(p.x && p.k && p.out && p.scratch, "top_logits_rows", "x, k, out and scratch must be set");
  UG_CUDA_REQUIRE(p.rows >= 1 && p.rows <= 65535 && p.n >= 1 && p.n < 0x7fffffff, "top_logits_rows",
                  "rows " + std::to_string(p.rows) + " (at most 65535) / n " + std::to_string(p.n) + " out of range");
  UG_CUDA_REQUIRE(p.capacity >= 1 && p.capacity <= p.n && p.capacity <= kChunk, "top_logits_rows",
                  "capacity " + std::to_string(p.capacity) + " outside [1, min(n = " + std::to_string(p.n) + ", " +
                      std::to_string(kChunk) + ")]");
  UG_CUDA_REQUIRE(p.max_excluded >= 0 && p.max_excluded <= kArgmaxMaxExcluded && (p.max_excluded == 0 || p.excluded_at),
                  "top_logits_rows",
                  "excluded ids per row " + std::to_string(p.max_excluded) + " exceed " +
                      std::to_string(kArgmaxMaxExcluded) + " (or excluded_at is not set)");
  const int64_t chunks = chunks_of(p.n);
  TopLogitsRowsParams q = p;
  if (q.max_excluded == 0) q.excluded_at = q.excluded_ids = nullptr;
  launch_kernel("chunk_top_kernel", chunk_top_kernel, dim3(unsigned(chunks), unsigned(p.rows)), kThreads, 0, stream, q);
  launch_kernel("merge_top_kernel", merge_top_kernel, unsigned(p.rows), kThreads, 0, stream, q, int(chunks));
}

}  // namespace ug::cuda
