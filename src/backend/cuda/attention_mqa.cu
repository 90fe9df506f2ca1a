// Decode attention on tensor cores for a query group of 16 heads per kv head (the 12B's full layers: MQA at head dim
// 512): one query row per sequence, so a tile's 16 (head) rows are exactly one mma's. Why not the flash kernel: its
// d 512 tiles give one row group to two warps that each compute all of Q Kᵀ, so a block keeps one or two warps
// busy and the stream of keys waits on their latency (b64: ~0.1 of the copy bandwidth with the fp8 cache). Why not
// the CUDA-core decode kernel: 16 heads make each key worth 16 dot products of 512 (compute-bound on CUDA cores).
//
// Here a block is one (sequence, kv head, key split) with 8 warps (16 at head dim 512 with UG_ATTN_MQA_WARPS=16:
// eighths for quarters below), and a step of 32 keys goes:
// - K and V rows into shared memory as the cache stores them (cp.async, `kStages` steps ahead; fp8 stays fp8);
// - S = Q Kᵀ split over the warps as (16 keys) x (a quarter of the dimensions), the quarters summed in shared
//   memory. A warp's quarter of the query fragments stays in its registers for the whole block;
// - the online softmax by all threads (16 per head, two keys each; 32 and one with 16 warps); probabilities to
//   shared memory as bf16 (f16 for fp8) terms;
// - O += P V with each warp owning D / warps output columns.
// The contraction order of S is free, so the query fragments take the order in which a thread's 16-byte load of a
// key row holds its values (no shuffles, one load per 2 or 4 k-steps); the same for V's columns (a thread's 8
// values of a row feed 8 output tiles). fp8 values widen to f16 exactly (one instruction per pair) and the products
// run on f16 mma: queries and probabilities are two-term f16 there (22 bits), at least as exact as two-term bf16.
// It runs over the plan's decode tiles (AttentionPlan::mqa), in a pure decode step and beside the flash kernel's
// tiles in a step that mixes decode rows with prefill chunks, and writes normalised rows or, with key splits, the
// [m, l, acc] partials merge_kernel reads.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <string>

#include "backend/cuda/attention_internal.cuh"
#include "backend/cuda/cp_async.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/env_knob.h"
#include "backend/cuda/kv_fp8.cuh"
#include "backend/cuda/launch.cuh"

namespace ug::cuda {
namespace {

constexpr int kRows = 16;  // query heads of a tile: the rows of an mma
constexpr int kKeys = 32;  // keys per step
constexpr float kLog2e = 1.4426950408889634f;
constexpr int64_t kDefaultWarps = 8;

// WARPS per block: 8 or 16 (UG_ATTN_MQA_WARPS; 16 only at head dim 512). S = Q Kᵀ: warp w takes keys 16 (w % 2) ..
// + 15 over the dimensions' part w / 2 (WARPS / 2 parts).
template <int D, AttentionMode MODE, int WARPS>
struct MqaShape {
  static constexpr int kWarps = WARPS, kThreads = 32 * WARPS, kParts = WARPS / 2;
  static constexpr int kScoresPerThread = kRows * kKeys / kThreads;  // the softmax's: 2 or 1
  static constexpr int kHeadLanes = kKeys / kScoresPerThread;        // threads per head: 16 or 32
  static constexpr bool kFp8 = MODE == AttentionMode::ExactFp8Kv;
  static constexpr bool kTwoTerm = MODE != AttentionMode::Fast;
  static constexpr int kElemBytes = kFp8 ? 1 : 2;
  static constexpr int kRowBytes = D * kElemBytes;
  // Shared row strides: a K load (16 bytes at key g, byte 16 t) and a V load (8 values at key 2 t, value 8 g) of a
  // warp's quarter- or half-warp land in distinct banks.
  static constexpr int kKStride = kRowBytes + 64;
  static constexpr int kVStride = kRowBytes + 16;
  static constexpr int kStageBytes = kKeys * (kKStride + kVStride);
  static constexpr int kStages = kFp8 ? 4 : 2;  // steps in shared memory (~140 KB either way: one block per SM)
  static constexpr int kLoadValues = 16 / kElemBytes;
  static constexpr int kStepsPerLoad = kLoadValues / 4;  // k16 steps one 16-byte K load feeds (4 values each)
  static constexpr int kPartSteps = D / 16 / kParts;     // k16 steps of a warp's part
  static constexpr int kWarpCols = D / kWarps;           // P V: output columns per warp
  static constexpr int kNTiles = kWarpCols / 8;          // their n8 tiles; a thread's V load: kNTiles values
  static constexpr int kPStride = kKeys + 8;             // P rows (16-bit), ldmatrix conflict-free
  static constexpr int kSmemBytes =
      kStages * kStageBytes + kParts * kRows * kKeys * 4 + 2 * kRows * kPStride * 2 + 3 * kRows * 4;
  static_assert(kPartSteps % kStepsPerLoad == 0 && kNTiles * kElemBytes >= 4, "shape");
};

__device__ __forceinline__ uint32_t pack_f16(float first, float second) {
  const __half2 v = __floats2half2_rn(first, second);
  return *reinterpret_cast<const uint32_t*>(&v);
}
__device__ __forceinline__ uint32_t pack_f16_residual(float first, float second) {
  return pack_f16(first - __half2float(__float2half_rn(first)), second - __half2float(__float2half_rn(second)));
}

// A value pair as an operand register: its first term (bf16, or f16 for the fp8 cache) or the residual second.
template <bool F16>
__device__ __forceinline__ uint32_t term_hi(float a, float b) {
  return F16 ? pack_f16(a, b) : pack_bf16(a, b);
}
template <bool F16>
__device__ __forceinline__ uint32_t term_lo(float a, float b) {
  return F16 ? pack_f16_residual(a, b) : pack_residual(a, b);
}
template <bool F16>
__device__ __forceinline__ void mma_t(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (F16)
    mma_f16(c, a, b0, b1);
  else
    mma(c, a, b0, b1);
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* smem) {
  const unsigned addr = unsigned(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// Where k16 step kk's four contraction values of thread t (A / B columns 2t, 2t + 1, 2t + 8, 2t + 9) sit in a key
// row: consecutive, inside the thread's 16-byte load of the row.
template <int STEPS_PER_LOAD>
__device__ __forceinline__ int contraction_dim(int kk, int t) {
  return (kk / STEPS_PER_LOAD) * 16 * STEPS_PER_LOAD + t * 4 * STEPS_PER_LOAD + (kk % STEPS_PER_LOAD) * 4;
}

// The pair (x[i] of row a, x[i] of row b) of two rows' 16-bit values (bf16) held as 32-bit words.
__device__ __forceinline__ uint32_t pair16(const uint32_t* a, const uint32_t* b, int i) {
  return __byte_perm(a[i / 2], b[i / 2], i % 2 ? 0x7632 : 0x5410);
}
// The same for fp8 bytes, widened to an f16 pair.
__device__ __forceinline__ uint32_t pair8(const uint32_t* a, const uint32_t* b, int i) {
  const int byte = i % 4;
  return e4m3x2_to_f16x2(uint16_t(__byte_perm(a[i / 4], b[i / 4], unsigned(byte | ((4 + byte) << 4)))));
}

template <int D, AttentionMode MODE, int WARPS>
__global__ void __launch_bounds__(32 * WARPS, 1) mqa_decode_kernel(AttentionParams p) {
  pdl_launch_dependents();
  pdl_wait();
  using Shape = MqaShape<D, MODE, WARPS>;
  constexpr int kThreads = Shape::kThreads, kParts = Shape::kParts, SPT = Shape::kScoresPerThread;
  constexpr bool F16 = Shape::kFp8, TWO = Shape::kTwoTerm;
  constexpr int NS = Shape::kStages, NT = Shape::kNTiles;
  const float k_inv = F16 ? 1.0f / p.k_scale : 1.0f;
  // Scores in log2 units (exp2 below); the fp8 cache holds keys / k_scale.
  const float score_scale = (F16 ? p.scale * p.k_scale : p.scale) * kLog2e;

  extern __shared__ __align__(128) unsigned char smem[];
  float* s_part = reinterpret_cast<float*>(smem + NS * Shape::kStageBytes);       // [kParts][kRows][kKeys]
  uint16_t* p_hi = reinterpret_cast<uint16_t*>(s_part + kParts * kRows * kKeys);  // [kRows][kPStride]
  uint16_t* p_lo = p_hi + kRows * Shape::kPStride;
  float* corr_s = reinterpret_cast<float*>(p_lo + kRows * Shape::kPStride);  // [kRows]
  float* m_s = corr_s + kRows;                                               // [kRows]: the end state
  float* l_s = m_s + kRows;                                                  // [kRows]

  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32, g = lane / 4, t = lane % 4;
  // The decode tile (after the flash kernel's tiles): sequence, kv head; this block's split of its visible keys, in
  // whole steps.
  // (The divisions in 32 bits: split_keys32.)
  const uint32_t splits = uint32_t(p.decode_splits), tile_index = blockIdx.x / splits,
                 split = blockIdx.x - tile_index * splits;
  const int32_t* tile = p.tiles + 3 * (p.n_tiles + tile_index);
  const int64_t kvh = tile[2];
  const AttentionSeq s = p.seqs[tile[0]];
  const int64_t Hkv = p.n_kv_heads, row = s.row0, head0 = kvh * kRows;
  int64_t lo = 0, hi = 0, klo = 0, khi = 0;
  key_range(p, s, row, lo, hi);
  split_keys32(lo, hi, splits, split, kKeys, klo, khi);
  const int n_steps = khi >= klo ? int((khi - klo) / kKeys) + 1 : 0;

  // This warp's part of the query fragments (rows g, g + 8), in the contraction order of the K loads.
  const int part = warp / 2, key_half = warp % 2;
  uint32_t qa[Shape::kPartSteps][4], ql[Shape::kPartSteps][4];
#pragma unroll
  for (int kk = 0; kk < Shape::kPartSteps; ++kk) {
    const int c = contraction_dim<Shape::kStepsPerLoad>(part * Shape::kPartSteps + kk, t);
    const float4 x = *reinterpret_cast<const float4*>(p.q + (row * p.n_heads + head0 + g) * D + c);
    const float4 y = *reinterpret_cast<const float4*>(p.q + (row * p.n_heads + head0 + g + 8) * D + c);
    qa[kk][0] = term_hi<F16>(x.x, x.y);
    qa[kk][1] = term_hi<F16>(y.x, y.y);
    qa[kk][2] = term_hi<F16>(x.z, x.w);
    qa[kk][3] = term_hi<F16>(y.z, y.w);
    if constexpr (TWO) {
      ql[kk][0] = term_lo<F16>(x.x, x.y);
      ql[kk][1] = term_lo<F16>(y.x, y.y);
      ql[kk][2] = term_lo<F16>(x.z, x.w);
      ql[kk][3] = term_lo<F16>(y.z, y.w);
    }
  }

  // The kv head's row in cache slot `slot` (as stored: kElemBytes per value).
  auto cache_row = [&](const void* cache, int64_t slot) {
    return static_cast<const unsigned char*>(cache) + (slot * Hkv + kvh) * Shape::kRowBytes;
  };
  // Loads step `step`'s keys into its stage: cache rows by cp.async, the step's fresh row rounded as the cache
  // stores it, zeros past khi (masked; finite so that 0 x V stays 0). One commit group per call.
  auto stage = [&](int step) {
    unsigned char* k_s = smem + (step % NS) * Shape::kStageBytes;
    unsigned char* v_s = k_s + kKeys * Shape::kKStride;
    const int64_t kb = klo + int64_t(step) * kKeys;
    constexpr int kChunks = Shape::kRowBytes / 16;  // 16-byte chunks per row
    const int64_t slot0 = cache_slot(s, kb), row_bytes = Hkv * Shape::kRowBytes;
    if (kb + kKeys - 1 <= khi && kb + kKeys - 1 < s.chunk_start &&
        (s.ring_capacity == 0 || slot0 + kKeys <= s.ring_capacity)) {
      // Every key cached, in consecutive slots (all steps but a split's last, and a ring's wrap): no per-row checks.
      const unsigned char *k_src = cache_row(s.cache_k, slot0), *v_src = cache_row(s.cache_v, slot0);
#pragma unroll
      for (int i = int(threadIdx.x); i < kKeys * kChunks; i += kThreads) {
        const int j = i / kChunks, c = i % kChunks;
        cp_async16(k_s + j * Shape::kKStride + 16 * c, k_src + j * row_bytes + 16 * c);
        cp_async16(v_s + j * Shape::kVStride + 16 * c, v_src + j * row_bytes + 16 * c);
      }
      cp_async_commit();
      return;
    }
    for (int i = int(threadIdx.x); i < 2 * kKeys * kChunks; i += kThreads) {
      const bool is_v = i >= kKeys * kChunks;
      const int j = (i % (kKeys * kChunks)) / kChunks, c = i % kChunks;
      const int64_t pos = kb + j;
      unsigned char* dst = is_v ? v_s + j * Shape::kVStride + 16 * c : k_s + j * Shape::kKStride + 16 * c;
      const void* cache = is_v ? s.cache_v : s.cache_k;
      if (pos > khi) {
        *reinterpret_cast<uint4*>(dst) = make_uint4(0, 0, 0, 0);
      } else if (pos >= s.chunk_start) {
        const float* src = (is_v ? p.v : p.k) + ((row + pos - s.chunk_start) * Hkv + kvh) * D + c * Shape::kLoadValues;
        uint32_t w[4];
        if constexpr (F16) {
          const float inv = is_v ? 1.0f : k_inv;
#pragma unroll
          for (int e = 0; e < 4; ++e) w[e] = e4m3x4_of(src + 4 * e, inv);
        } else {
#pragma unroll
          for (int e = 0; e < 4; ++e) w[e] = pack_bf16(src[2 * e], src[2 * e + 1]);
        }
        *reinterpret_cast<uint4*>(dst) = make_uint4(w[0], w[1], w[2], w[3]);
      } else {
        cp_async16(dst, cache_row(cache, cache_slot(s, pos)) + 16 * c);
      }
    }
    cp_async_commit();
  };

  float o[NT][4];
#pragma unroll
  for (int j = 0; j < NT; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
  // Softmax state of head `sm_head` (thread i: head i / kHeadLanes, keys SPT (i % kHeadLanes) .. of each step).
  const int sm_head = int(threadIdx.x) / Shape::kHeadLanes, sm_key = SPT * (int(threadIdx.x) % Shape::kHeadLanes);
  float m_run = -INFINITY, l_run = 0.0f;

#pragma unroll
  for (int i = 0; i < NS - 1; ++i) {
    if (i < n_steps)
      stage(i);
    else
      cp_async_commit();  // empty groups keep the wait count uniform
  }
  for (int it = 0; it < n_steps; ++it) {
    cp_async_wait<NS - 2>();
    __syncthreads();  // step it's rows are in; every warp is done with step it - 1 (its stage is free again)
    if (it + NS - 1 < n_steps)
      stage(it + NS - 1);
    else
      cp_async_commit();
    const unsigned char* k_s = smem + (it % NS) * Shape::kStageBytes;
    const unsigned char* v_s = k_s + kKeys * Shape::kKStride;

    // S partial: keys 16 key_half + 8 nt + g, this warp's part of the dimensions. The rows' bytes are loaded
    // first, and each k-step's four products go to four accumulators (n tile x query term): a warp issues in order,
    // so consecutive products must not wait on each other.
    constexpr int kLoads = Shape::kPartSteps / Shape::kStepsPerLoad;
    uint4 kraw[2][kLoads];
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
      const unsigned char* krow = k_s + (16 * key_half + 8 * nt + g) * Shape::kKStride;
#pragma unroll
      for (int ld = 0; ld < kLoads; ++ld)
        kraw[nt][ld] = *reinterpret_cast<const uint4*>(
            krow + contraction_dim<Shape::kStepsPerLoad>(part * Shape::kPartSteps + ld * Shape::kStepsPerLoad, t) *
                       Shape::kElemBytes);
    }
    float acc[2][2][4] = {};  // [n tile][query term]
#pragma unroll
    for (int kk = 0; kk < Shape::kPartSteps; ++kk) {
      const int ld = kk / Shape::kStepsPerLoad, e = kk % Shape::kStepsPerLoad;
      uint32_t b[2][2];
#pragma unroll
      for (int nt = 0; nt < 2; ++nt) {
        const uint32_t w[4] = {kraw[nt][ld].x, kraw[nt][ld].y, kraw[nt][ld].z, kraw[nt][ld].w};
        if constexpr (F16) {
          b[nt][0] = e4m3x2_to_f16x2(uint16_t(w[e] & 0xffffu));
          b[nt][1] = e4m3x2_to_f16x2(uint16_t(w[e] >> 16));
        } else {
          b[nt][0] = w[2 * e];
          b[nt][1] = w[2 * e + 1];
        }
      }
#pragma unroll
      for (int nt = 0; nt < 2; ++nt) mma_t<F16>(acc[nt][0], qa[kk], b[nt][0], b[nt][1]);
      if constexpr (TWO) {
#pragma unroll
        for (int nt = 0; nt < 2; ++nt) mma_t<F16>(acc[nt][1], ql[kk], b[nt][0], b[nt][1]);
      }
    }
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
      float* dst = s_part + (part * kRows + g) * kKeys + 16 * key_half + 8 * nt + 2 * t;
      *reinterpret_cast<float2*>(dst) = make_float2(acc[nt][0][0] + acc[nt][1][0], acc[nt][0][1] + acc[nt][1][1]);
      *reinterpret_cast<float2*>(dst + 8 * kKeys) =
          make_float2(acc[nt][0][2] + acc[nt][1][2], acc[nt][0][3] + acc[nt][1][3]);
    }
    __syncthreads();

    // Online softmax: the parts summed in a fixed order, masked past khi; a head's threads are a half-warp or a warp.
    {
      const int64_t kb = klo + int64_t(it) * kKeys;
      float x[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int e = 0; e < SPT; ++e) {
        float sum = 0.0f;
#pragma unroll
        for (int q = 0; q < kParts; ++q) sum += s_part[(q * kRows + sm_head) * kKeys + sm_key + e];
        x[e] = kb + sm_key + e <= khi ? sum * score_scale : -INFINITY;
      }
      float mx = fmaxf(x[0], x[1]);
#pragma unroll
      for (int off = Shape::kHeadLanes / 2; off >= 1; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
      const float m_new = fmaxf(m_run, mx);
      const float m_use = m_new == -INFINITY ? 0.0f : m_new;
      const float corr = exp2f(m_run - m_use);
      const float p0 = exp2f(x[0] - m_use), p1 = exp2f(x[1] - m_use);
      float sum = p0 + p1;
#pragma unroll
      for (int off = Shape::kHeadLanes / 2; off >= 1; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
      l_run = l_run * corr + sum;
      m_run = m_new;
      if (sm_key == 0) corr_s[sm_head] = corr;
      uint16_t* ph = p_hi + sm_head * Shape::kPStride + sm_key;
      uint16_t* pl = p_lo + sm_head * Shape::kPStride + sm_key;
      if constexpr (SPT == 2) {
        *reinterpret_cast<uint32_t*>(ph) = term_hi<F16>(p0, p1);
        if constexpr (TWO) *reinterpret_cast<uint32_t*>(pl) = term_lo<F16>(p0, p1);
      } else {  // p1 is 0 (x[1] = -inf): the low halves are p0's terms
        *ph = uint16_t(term_hi<F16>(p0, p1));
        if constexpr (TWO) *pl = uint16_t(term_lo<F16>(p0, p1));
      }
    }
    __syncthreads();

    // O (this warp's columns) rescaled, then += P V.
    {
      const float c0 = corr_s[g], c1 = corr_s[g + 8];
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        o[j][0] *= c0;
        o[j][1] *= c0;
        o[j][2] *= c1;
        o[j][3] *= c1;
      }
#pragma unroll
      for (int ks = 0; ks < kKeys / 16; ++ks) {
        uint32_t pa[4], pl[4];
        const int prow = lane % 16, pcol = 16 * ks + (lane / 16) * 8;
        ldmatrix_x4(pa, p_hi + prow * Shape::kPStride + pcol);
        if constexpr (TWO) ldmatrix_x4(pl, p_lo + prow * Shape::kPStride + pcol);
        // Keys 2t, 2t + 1, 2t + 8, 2t + 9 of the 16; columns warp * kWarpCols + NT g .. + NT - 1 (tile j's column g
        // is output column warp * kWarpCols + NT g + j).
        constexpr int kWords = NT * Shape::kElemBytes / 4;
        uint32_t vr[4][kWords];
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          const int key = 16 * ks + 2 * t + (r & 1) + 8 * (r >> 1);
          const unsigned char* src =
              v_s + key * Shape::kVStride + (warp * Shape::kWarpCols + NT * g) * Shape::kElemBytes;
          if constexpr (kWords == 4) {
            const uint4 x = *reinterpret_cast<const uint4*>(src);
            vr[r][0] = x.x, vr[r][1] = x.y, vr[r][2] = x.z, vr[r][3] = x.w;
          } else if constexpr (kWords == 2) {
            const uint2 x = *reinterpret_cast<const uint2*>(src);
            vr[r][0] = x.x, vr[r][1] = x.y;
          } else {
            vr[r][0] = *reinterpret_cast<const uint32_t*>(src);
          }
        }
        uint32_t b[NT][2];
#pragma unroll
        for (int j = 0; j < NT; ++j) {
          b[j][0] = F16 ? pair8(vr[0], vr[1], j) : pair16(vr[0], vr[1], j);
          b[j][1] = F16 ? pair8(vr[2], vr[3], j) : pair16(vr[2], vr[3], j);
          mma_t<F16>(o[j], pa, b[j][0], b[j][1]);
        }
        if constexpr (TWO) {  // after all the first terms: the second ones are NT products behind theirs
#pragma unroll
          for (int j = 0; j < NT; ++j) mma_t<F16>(o[j], pl, b[j][0], b[j][1]);
        }
      }
    }
  }

  // Rows out: normalised, or this split's [m, l, acc] partial (m in natural-log units, -inf for no keys).
  if (sm_key == 0) {
    m_s[sm_head] = m_run;
    l_s[sm_head] = l_run;
  }
  __syncthreads();
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = g + 8 * h;
    const int64_t rh = row * p.n_heads + head0 + r;
    const float l = l_s[r];
    // Columns warp * kWarpCols + NT (2t + e) + j of tile j, column 2t + e: two runs of NT floats.
    float run[2][NT];
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      run[0][j] = o[j][2 * h];
      run[1][j] = o[j][2 * h + 1];
    }
    float* dst = splits == 1 ? p.out + rh * D : p.partial + (rh * splits + split) * (D + 2) + 2;
    const float inv = splits == 1 ? 1.0f / l : 1.0f;
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      float* out = dst + warp * Shape::kWarpCols + NT * (2 * t + e);
#pragma unroll
      for (int j = 0; j < NT; ++j) out[j] = run[e][j] * inv;
    }
    if (splits > 1 && warp == 0 && t == 0) {
      float* part = dst - 2;
      part[0] = m_s[r] == -INFINITY ? -INFINITY : m_s[r] / kLog2e;
      part[1] = l;
    }
  }
}

template <int D, AttentionMode MODE, int WARPS>
void launch_warps(const AttentionParams& p, cudaStream_t stream) {
  constexpr int bytes = MqaShape<D, MODE, WARPS>::kSmemBytes;
  static_assert(bytes <= 227 * 1024, "shared memory of one block");
  UG_CUDA_CHECK(
      cudaFuncSetAttribute(mqa_decode_kernel<D, MODE, WARPS>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  launch_kernel("mqa_decode_kernel", mqa_decode_kernel<D, MODE, WARPS>, unsigned(p.n_decode_tiles * p.decode_splits),
                32 * WARPS, size_t(bytes), stream, p);
}

// Knob UG_ATTN_MQA_WARPS: 16 at head dim 512 (twice the warps per SM to hide latency, half the work each).
template <int D, AttentionMode MODE>
void launch(const AttentionParams& p, cudaStream_t stream) {
  static const int64_t warps = env_knob("UG_ATTN_MQA_WARPS", kDefaultWarps);
  if constexpr (D == 512) {
    if (warps == 16) return launch_warps<D, MODE, 16>(p, stream);
  }
  launch_warps<D, MODE, 8>(p, stream);
}

template <int D>
void launch_dim(const AttentionParams& p, cudaStream_t stream) {
  switch (p.mode) {
    case AttentionMode::Fast:
      return launch<D, AttentionMode::Fast>(p, stream);
    case AttentionMode::Exact:
      return launch<D, AttentionMode::Exact>(p, stream);
    case AttentionMode::ExactFp8Kv:
      return launch<D, AttentionMode::ExactFp8Kv>(p, stream);
    case AttentionMode::ExactF32Kv:
      break;
  }
  UG_CUDA_REQUIRE(false, "attention (mqa decode kernel)", "the f32 KV cache is not supported (use plan_attention)");
}

}  // namespace

bool mqa_decode_supports(int64_t head_dim, int64_t group, AttentionMode mode) {
  return group == kRows && (head_dim == 256 || head_dim == 512) && mode != AttentionMode::ExactF32Kv;
}

int64_t mqa_decode_step_keys() { return kKeys; }

void launch_mqa_decode_attention(const AttentionParams& p, cudaStream_t stream) {
  if (p.head_dim == 512) return launch_dim<512>(p, stream);
  if (p.head_dim == 256) return launch_dim<256>(p, stream);
  UG_CUDA_REQUIRE(false, "attention (mqa decode kernel)",
                  "head_dim " + std::to_string(p.head_dim) + " is not supported (256 or 512; use plan_attention)");
}

}  // namespace ug::cuda
