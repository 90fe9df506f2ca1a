// Decode attention on CUDA cores: one query row per sequence, G <= 4 query heads of one kv head per tile (the
// 12B's sliding layers: 2; its full layers' MQA group of 16 at d 512 as 8 tiles of 2 that read the same keys:
// decode_tile_heads). Why not the tensor-core flash kernel: a one-row tile fills G of an mma's 16 rows, so its single
// compute warp per block is busy 8x longer than the data needs and the KV stream stalls behind it (b64 decode read
// the sliding caches at ~0.4 of the copy bandwidth). Here a decode step is a pure KV stream: per block one
// (sequence, kv head, key split), 8 warps each over their own keys, every lane holding D / 32 columns of a key row
// (one coalesced 16-byte load per row at d 256), so a warp's loads of 8 keys and their values are all in flight at
// once. Products are f32 (f32 queries and probabilities against the stored keys/values): at least as exact as
// every AttentionMode asks. The warps' online-softmax states are merged in shared memory at the end; key splits
// write the same [m, l, acc] partials as the flash kernel (attention.cu merges them).
#include <cuda_bf16.h>

#include <string>
#include <type_traits>

#include "backend/cuda/attention_internal.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kv_fp8.cuh"
#include "backend/cuda/launch.cuh"

namespace ug::cuda {
namespace {

constexpr unsigned kFull = 0xffffffffu;

// N consecutive 32-bit words (N = 1, 2 or a multiple of 4) in as few loads as their alignment allows.
template <int N>
__device__ __forceinline__ void load_words(uint32_t (&out)[N], const void* src) {
  if constexpr (N % 4 == 0) {
#pragma unroll
    for (int i = 0; i < N / 4; ++i) {
      const uint4 x = static_cast<const uint4*>(src)[i];
      out[4 * i] = x.x;
      out[4 * i + 1] = x.y;
      out[4 * i + 2] = x.z;
      out[4 * i + 3] = x.w;
    }
  } else if constexpr (N == 2) {
    const uint2 x = *static_cast<const uint2*>(src);
    out[0] = x.x;
    out[1] = x.y;
  } else {
    static_assert(N == 1, "a lane's slice is 4, 8 or a multiple of 16 bytes");
    out[0] = *static_cast<const uint32_t*>(src);
  }
}

// A lane's D / 32 columns of one key or value row: bf16 pairs (low half first), f32 bits, or f16 pairs (an fp8 row
// widened by Fp8Held::wide: one conversion per two values, exact).
template <int D, KvType KV>
struct Slice {
  static constexpr bool kF32 = KV == KvType::F32;
  static constexpr int kCols = D / 32;
  static constexpr int kWords = kF32 ? kCols : kCols / 2;
  uint32_t w[kWords];
  __device__ __forceinline__ float at(int i) const {
    if constexpr (kF32) return __uint_as_float(w[i]);
    if constexpr (KV == KvType::Fp8) return f16x2_at(w[i / 2], i % 2);
    return __uint_as_float(i % 2 ? (w[i / 2] & 0xffff0000u) : (w[i / 2] << 16));
  }
  // The lane's columns as the cache stores them (kCols values of kv_type_bytes(KV) bytes; fp8 rows load as Fp8Held).
  __device__ __forceinline__ void load(const void* src) {
    static_assert(KV != KvType::Fp8, "fp8 rows are held as stored (Fp8Held)");
    load_words(w, src);
  }
  // A fresh f32 row of the step as the cache would hold it: rounded to bf16, or f32 as is.
  __device__ __forceinline__ void load_fresh(const float* src, float) {
    if constexpr (kF32) {
      load_words(w, src);
    } else {
#pragma unroll
      for (int i = 0; i < kWords; ++i) w[i] = pack_bf16(src[2 * i], src[2 * i + 1]);
    }
  }
  __device__ __forceinline__ void zero() {
#pragma unroll
    for (int i = 0; i < kWords; ++i) w[i] = 0;
  }
  __device__ __forceinline__ const Slice& wide() const { return *this; }
};

// An fp8 row's slice as the cache stores it (four e4m3 values per register), widened to Slice's f16 pairs only
// when used: a warp step then holds as many keys' bytes as a bf16 step (twice the keys) in the same registers. A
// decode warp waits for each step's loads before the next step's are issued, so its speed is the bytes a step has
// in flight: widened on load, an fp8 step carried half a bf16 step's bytes.
template <int D>
struct Fp8Held {
  static constexpr int kCols = D / 32, kWords = kCols / 4;
  static_assert(kCols % 4 == 0, "a lane's fp8 slice is whole 32-bit words");
  uint32_t w[kWords];
  __device__ __forceinline__ void load(const void* src) { load_words(w, src); }
  __device__ __forceinline__ void load_fresh(const float* src, float inv) {
#pragma unroll
    for (int i = 0; i < kWords; ++i) w[i] = e4m3x4_of(src + 4 * i, inv);
  }
  __device__ __forceinline__ void zero() {
#pragma unroll
    for (int i = 0; i < kWords; ++i) w[i] = 0;
  }
  __device__ __forceinline__ Slice<D, KvType::Fp8> wide() const {
    Slice<D, KvType::Fp8> s;
#pragma unroll
    for (int i = 0; i < kWords; ++i) {
      s.w[2 * i] = e4m3x2_to_f16x2(uint16_t(w[i] & 0xffffu));
      s.w[2 * i + 1] = e4m3x2_to_f16x2(uint16_t(w[i] >> 16));
    }
    return s;
  }
};

// What a lane holds of a key or value row from its load to its use: fp8 rows as stored, bf16 / f32 rows as Slice.
template <int D, KvType KV>
using Held = std::conditional_t<KV == KvType::Fp8, Fp8Held<D>, Slice<D, KV>>;

__host__ __device__ constexpr int log2_of(int n) { return n <= 1 ? 0 : 1 + log2_of(n / 2); }

// One level of warp_sum_all's reduce-scatter: lanes `off` apart swap halves of v[0, 2 half) and add; the level
// is a template parameter so that every index is a constant (as a loop, the compiler left the levels rolled from
// N = 16 on and v went to local memory).
template <int N, int S>
__device__ __forceinline__ void reduce_scatter_level(float (&v)[N], int lane) {
  constexpr int off = 16 >> S, half = N >> (S + 1);
  const bool upper = lane & off;
#pragma unroll
  for (int i = 0; i < half; ++i) {
    const float send = upper ? v[i] : v[i + half];
    const float keep = upper ? v[i + half] : v[i];
    v[i] = keep + __shfl_xor_sync(kFull, send, off);
  }
  if constexpr (S + 1 < log2_of(N)) reduce_scatter_level<N, S + 1>(v, lane);
}

// Sums each of the N values over the warp's 32 lanes by a butterfly reduce-scatter (each step a lane keeps half of
// its values and adds its partner's copy of them: N - 1 shuffles in all, ~2N with the last levels instead of 5N).
// Returns the sum of value lane >> (5 - log2 N): each sum ends on 32 / N lanes.
template <int N>
__device__ __forceinline__ float warp_reduce_scatter(float (&v)[N], int lane) {
  constexpr int L = log2_of(N);
  static_assert(N == 1 << L && L <= 5, "N must be a power of two up to 32");
  if constexpr (L > 0) reduce_scatter_level<N, 0>(v, lane);
  float x = v[0];
#pragma unroll
  for (int off = 16 >> L; off >= 1; off >>= 1) x += __shfl_xor_sync(kFull, x, off);
  return x;
}

// Max (kMax) or sum of x over the lanes that differ from this one in lane bits [kLow, 5).
template <int kLow, bool kMax>
__device__ __forceinline__ float warp_reduce_high_bits(float x) {
#pragma unroll
  for (int off = 16; off >= (1 << kLow); off >>= 1) {
    const float y = __shfl_xor_sync(kFull, x, off);
    x = kMax ? fmaxf(x, y) : x + y;
  }
  return x;
}

// Keys per warp step: a lane keeps their K and V slices in registers (<= 2 x 16 words: more costs the second block
// per SM, whose warps hide load latency better than longer steps), at most 8, and at most 16 scores (KEYS x G) per step
// (more spill at 128 registers).
template <int D, int G, KvType KV>
__host__ __device__ constexpr int keys_per_step() {
  constexpr int by_regs = 16 / Held<D, KV>::kWords, by_scores = 16 / G;
  constexpr int k = by_regs < by_scores ? by_regs : by_scores;
  return k < 1 ? 1 : k > 8 ? 8 : k;
}

template <int D, int G, KvType KV>
__global__ void __launch_bounds__(32 * kDecodeWarps, 2) decode_attention_kernel(AttentionParams p) {
  pdl_launch_dependents();
  pdl_wait();
  using S = Slice<D, KV>;
  using H = Held<D, KV>;
  constexpr int C = S::kCols, KEYS = keys_per_step<D, G, KV>();
  // Fp8 caches hold keys / k_scale: fresh keys are rounded the same way and the scores scaled back.
  const float k_inv = KV == KvType::Fp8 ? 1.0f / p.k_scale : 1.0f;
  const float score_scale = KV == KvType::Fp8 ? p.scale * p.k_scale : p.scale;
  __shared__ float o_s[kDecodeWarps][G][D];
  __shared__ float ml_s[kDecodeWarps][G][2];

  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  const int32_t* tiles = p.tiles + 3 * p.n_tiles;  // after the flash kernel's
  // The prologue's divisions in 32 bits (split_keys32 says why).
  const uint32_t splits = uint32_t(p.decode_splits), tile = blockIdx.x / splits, split = blockIdx.x - tile * splits;
  const AttentionSeq s = p.seqs[tiles[3 * tile]];
  // The tile's G query heads from head0 (a GQA group larger than G spans several tiles: decode_tile_heads).
  const uint32_t head0 = uint32_t(tiles[3 * tile + 2]) * G;
  const int64_t kvh = head0 / (uint32_t(p.n_heads) / uint32_t(p.n_kv_heads)), row = s.row0, Hkv = p.n_kv_heads;
  int64_t lo = 0, hi = 0, klo = 0, khi = 0;
  key_range(p, s, row, lo, hi);
  split_keys32(lo, hi, splits, split, 1, klo, khi);

  float q[G][C], o[G][C], m_run[G], l_run[G];
#pragma unroll
  for (int h = 0; h < G; ++h) {
    const float* src = p.q + (row * p.n_heads + head0 + h) * D + lane * C;
#pragma unroll
    for (int i = 0; i < C; ++i) {
      q[h][i] = src[i];
      o[h][i] = 0.0f;
    }
    m_run[h] = -INFINITY;
    l_run[h] = 0.0f;
  }

  // The ring slot of key kb, kept from step to step (a 64-bit modulo per key cost as many instructions as the
  // step's products).
  const int64_t cap = s.ring_capacity, first = klo + warp * KEYS;
  // cache_slot in 32 bits (positions and ring capacities are below 2^31).
  int64_t slot_kb = cap > 0 ? int64_t(uint32_t(first) % uint32_t(cap)) : first;
  constexpr int64_t kStride = KEYS * kDecodeWarps;
  // This lane's columns of kv head kvh in cache row 0, and the bytes from one cache row to the next.
  const int64_t row_bytes = Hkv * D * kv_type_bytes(KV), lane_bytes = (kvh * D + lane * C) * kv_type_bytes(KV);
  const uint8_t* k_lane = static_cast<const uint8_t*>(s.cache_k) + lane_bytes;
  const uint8_t* v_lane = static_cast<const uint8_t*>(s.cache_v) + lane_bytes;
  // Steps whose keys are all cached rows (all but the last steps of a split) load without per-key checks; one
  // wrap of the ring at most (cap >= KEYS).
  const int64_t last_cached = min(khi, s.chunk_start - 1);
  const bool ring_holds_step = cap == 0 || cap >= KEYS;
  for (int64_t kb = first; kb <= khi; kb += kStride) {
    H k[KEYS], v[KEYS];
    if (kb + KEYS - 1 <= last_cached && ring_holds_step) {
#pragma unroll
      for (int j = 0; j < KEYS; ++j) {
        int64_t slot = slot_kb + j;
        if (cap > 0 && slot >= cap) slot -= cap;
        k[j].load(k_lane + slot * row_bytes);
        v[j].load(v_lane + slot * row_bytes);
      }
    } else {
#pragma unroll
      for (int j = 0; j < KEYS; ++j) {
        const int64_t pos = kb + j;
        if (pos > khi) {
          k[j].zero();
          v[j].zero();
        } else if (pos >= s.chunk_start) {
          const int64_t at = ((s.row0 + pos - s.chunk_start) * Hkv + kvh) * D + lane * C;
          k[j].load_fresh(p.k + at, k_inv);
          v[j].load_fresh(p.v + at, 1.0f);
        } else {
          int64_t slot = slot_kb + j;
          if (cap > 0)
            while (slot >= cap) slot -= cap;
          k[j].load(k_lane + slot * row_bytes);
          v[j].load(v_lane + slot * row_bytes);
        }
      }
    }
    slot_kb += kStride;
    if (cap > 0)
      while (slot_kb >= cap) slot_kb -= cap;
    float sc[KEYS * G];  // score of key j, head h at j * G + h
#pragma unroll
    for (int j = 0; j < KEYS; ++j) {
      const S& kw = k[j].wide();
#pragma unroll
      for (int h = 0; h < G; ++h) {
        float dot = 0.0f;
#pragma unroll
        for (int i = 0; i < C; ++i) dot = fmaf(q[h][i], kw.at(i), dot);
        sc[j * G + h] = dot;
      }
    }
    // The softmax spread over the lanes: lane l ends with score n = l >> kLaneShift (key n / G, head n % G), and
    // each score's exponential is computed once per lane instead of all KEYS x G on every lane.
    constexpr int kLaneShift = 5 - log2_of(KEYS * G), kKeyBits = kLaneShift + log2_of(G);
    const int mine = lane >> kLaneShift, my_key = mine / G, my_head = mine % G;
    const float dot = warp_reduce_scatter(sc, lane);  // every lane shuffles: before the masking
    const float x = kb + my_key <= khi ? dot * score_scale : -INFINITY;
    const float step_max = warp_reduce_high_bits<kKeyBits, true>(x);  // over the step's keys, for my_head
    float my_max = 0.0f;  // my_head's new running max (every head's is finite: key kb is visible)
#pragma unroll
    for (int h = 0; h < G; ++h) {
      const float m_new = fmaxf(m_run[h], __shfl_sync(kFull, step_max, h << kLaneShift));
      const float corr = expf(m_run[h] - m_new);
      m_run[h] = m_new;
      l_run[h] *= corr;
#pragma unroll
      for (int i = 0; i < C; ++i) o[h][i] *= corr;
      if (h == my_head) my_max = m_new;
    }
    const float prob = expf(x - my_max);  // 0 past khi (its value row is zeros)
    const float step_sum = warp_reduce_high_bits<kKeyBits, false>(prob);
#pragma unroll
    for (int h = 0; h < G; ++h) {
      l_run[h] += __shfl_sync(kFull, step_sum, h << kLaneShift);
    }
    // The values, each widened once for all heads (o[h][i] sees the same operations in the same order as head by
    // head), each probability fetched from its lane where it is used.
#pragma unroll
    for (int j = 0; j < KEYS; ++j) {
      const S& vw = v[j].wide();
#pragma unroll
      for (int h = 0; h < G; ++h) {
        const float pr = __shfl_sync(kFull, prob, (j * G + h) << kLaneShift);
#pragma unroll
        for (int i = 0; i < C; ++i) o[h][i] = fmaf(pr, vw.at(i), o[h][i]);
      }
    }
  }

  // Merge the warps' states: out = sum_w o_w e^(m_w - M) / sum_w l_w e^(m_w - M).
#pragma unroll
  for (int h = 0; h < G; ++h) {
#pragma unroll
    for (int i = 0; i < C; ++i) o_s[warp][h][lane * C + i] = o[h][i];
    if (lane == 0) {
      ml_s[warp][h][0] = m_run[h];
      ml_s[warp][h][1] = l_run[h];
    }
  }
  __syncthreads();
  for (int e = int(threadIdx.x); e < G * D; e += 32 * kDecodeWarps) {
    const int h = e / D, c = e % D;
    float big = -INFINITY;
#pragma unroll
    for (int w = 0; w < kDecodeWarps; ++w) big = fmaxf(big, ml_s[w][h][0]);
    float total = 0.0f, acc = 0.0f;
#pragma unroll
    for (int w = 0; w < kDecodeWarps; ++w) {
      const float m = ml_s[w][h][0];
      if (m == -INFINITY) continue;  // a warp without keys
      const float wt = expf(m - big);
      total += ml_s[w][h][1] * wt;
      acc += o_s[w][h][c] * wt;
    }
    const int64_t rh = row * p.n_heads + head0 + h;
    if (splits == 1) {
      p.out[rh * D + c] = acc / total;
    } else {
      float* part = p.partial + (rh * splits + split) * (D + 2);  // [m, l, acc[D]]; m = -inf: no keys here
      if (c == 0) {
        part[0] = big;
        part[1] = total;
      }
      part[2 + c] = acc;
    }
  }
}

template <int D, int G>
void launch_group(const AttentionParams& p, cudaStream_t stream) {
  const unsigned blocks = unsigned(p.n_decode_tiles * p.decode_splits), threads = 32 * kDecodeWarps;
  const KvType kv = kv_type_of(p.mode);
  launch_kernel("decode_attention_kernel",
                kv == KvType::F32   ? decode_attention_kernel<D, G, KvType::F32>
                : kv == KvType::Fp8 ? decode_attention_kernel<D, G, KvType::Fp8>
                                    : decode_attention_kernel<D, G, KvType::Bf16>,
                blocks, threads, 0, stream, p);
}

template <int D>
void launch_dim(const AttentionParams& p, cudaStream_t stream) {
  const int64_t group = p.n_heads / p.n_kv_heads;
  switch (decode_tile_heads(D, group)) {
    case 1:
      return launch_group<D, 1>(p, stream);
    case 2:
      return launch_group<D, 2>(p, stream);
    case 4:
      if constexpr (D <= 256) return launch_group<D, 4>(p, stream);
      break;
    default:
      break;
  }
  UG_CUDA_REQUIRE(false, "attention (decode kernel)",
                  "GQA group " + std::to_string(group) + " at head_dim " + std::to_string(D) +
                      " is not supported (use plan_attention)");
}

}  // namespace

int64_t decode_tile_heads(int64_t head_dim, int64_t group) {
  if (head_dim != 128 && head_dim != 256 && head_dim != 512) return 0;
  for (int64_t g : {int64_t(4), int64_t(2), int64_t(1)})
    if (group % g == 0 && (g < 4 || head_dim <= 256)) return g;
  return 0;
}

bool decode_kernel_supports(int64_t head_dim, int64_t group) {
  return group >= 1 && decode_tile_heads(head_dim, group) > 0;
}

void launch_decode_attention(const AttentionParams& p, cudaStream_t stream) {
  switch (p.head_dim) {
    case 128:
      return launch_dim<128>(p, stream);
    case 256:
      return launch_dim<256>(p, stream);
    case 512:
      return launch_dim<512>(p, stream);
    default:
      UG_CUDA_REQUIRE(false, "attention (decode kernel)",
                      "head_dim " + std::to_string(p.head_dim) + " is not supported (128, 256 or 512)");
  }
}

}  // namespace ug::cuda
