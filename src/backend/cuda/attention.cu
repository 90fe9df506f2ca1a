// Flash attention on tensor cores (see attention.h): per block one tile of (query, head) rows that share a kv
// head, a loop over blocks of kKeys keys (K and V staged in shared memory as bf16: cache rows by cp.async, the
// step's fresh f32 rows converted on the way), S = Q Kᵀ and O += P V with mma.sync m16n8k16, f32 online
// softmax in registers. Plus the merge of split partials.
//
// Fragment layouts: mma.cuh. The S accumulator of two adjacent 8-key tiles is exactly the A fragment of P for the
// 16 keys (no shuffles).
#include <cuda_bf16.h>

#include <algorithm>
#include <string>

#include "backend/cuda/attention.h"
#include "backend/cuda/attention_internal.cuh"
#include "backend/cuda/cp_async.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_math.cuh"
#include "backend/cuda/env_knob.h"
#include "backend/cuda/kv_fp8.cuh"
#include "backend/cuda/launch.cuh"

namespace ug::cuda {
namespace {

constexpr int kKeys = 32;                // keys per loop step
constexpr int kPad = 8;                  // bf16 padding per shared row: conflict-free fragment loads and ldmatrix
constexpr int64_t kTargetBlocks = 1056;  // ~8 resident blocks per SM on an H100/H200: split keys below this
// Flash tiles of one-row sequences only (the full layers' decode beyond kSpanningDecodeMaxSeqs): two blocks per SM.
// Each split writes G x (D + 2) partial floats and its block loads the queries: at b64, d 512, 1,056 blocks took
// 149 us per call with the fp8 cache, 132 blocks 122 us.
constexpr int64_t kDecodeFlashTargetBlocks = 264;
constexpr int kMinBlockWarps = 4;  // warps that stage K/V even when fewer compute (decode tiles)

// Most one-row sequences for which a GQA group spanning several decode tiles takes the decode kernel (measured on the
// H200, 12B full layers, d 512, 16 heads as 8 tiles: b1 ctx 1k 22.6 vs 24.9 us, ctx 16k 63.4 vs 71.3; b32 106 vs
// 102, b64 183 vs 125: from there the 8 reads of every key saturate L2).
constexpr int64_t kSpanningDecodeMaxSeqs = 4;
constexpr int64_t kDecodeTargetBlocks = 264;  // decode kernel: two blocks per SM (measured: fewer splits beat waves)
constexpr int64_t kWgmmaTargetBlocks = 132;   // wgmma kernel: one block per SM of an H100 / H200
constexpr int64_t kMqaTargetBlocks = 132;     // MQA decode kernel: one ~150 KB block per SM
constexpr int64_t kMqaMinSplitSteps = 2;      // its splits keep at least this many steps of keys
constexpr int kMergeThreads = 128;
constexpr int64_t kMergeMaxSplits = 1024;  // splits one merge block holds (plan_attention stays far below)

__device__ __forceinline__ uint32_t ld_u32(const __nv_bfloat16* p) { return *reinterpret_cast<const uint32_t*>(p); }

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const __nv_bfloat16* smem) {
  const unsigned addr = unsigned(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// 8 f32 -> 8 bf16 (16 bytes) in shared memory.
__device__ __forceinline__ void store8(__nv_bfloat16* dst, const float* src) {
  const float4 a = *reinterpret_cast<const float4*>(src), b = *reinterpret_cast<const float4*>(src + 4);
  *reinterpret_cast<uint4*>(dst) =
      make_uint4(pack_bf16(a.x, a.y), pack_bf16(a.z, a.w), pack_bf16(b.x, b.y), pack_bf16(b.z, b.w));
}

__host__ __device__ constexpr bool two_term_q(AttentionMode m) { return m != AttentionMode::Fast; }
__host__ __device__ constexpr bool two_term_kv(AttentionMode m) { return m == AttentionMode::ExactF32Kv; }
__host__ __device__ constexpr bool fp8_kv(AttentionMode m) { return m == AttentionMode::ExactFp8Kv; }

// 8 f32 -> their e4m3 roundings after multiplying by inv (as kv_store stores them), as 8 bf16 in shared memory.
__device__ __forceinline__ void store8_via_e4m3(__nv_bfloat16* dst, const float* src, float inv) {
  const float4 a = *reinterpret_cast<const float4*>(src), b = *reinterpret_cast<const float4*>(src + 4);
  *reinterpret_cast<uint4*>(dst) = make_uint4(pack_via_e4m3(a.x, a.y, inv), pack_via_e4m3(a.z, a.w, inv),
                                              pack_via_e4m3(b.x, b.y, inv), pack_via_e4m3(b.z, b.w, inv));
}

// 8 e4m3 bytes of a cache row -> 8 bf16 in shared memory (exact).
__device__ __forceinline__ void store8_from_e4m3(__nv_bfloat16* dst, uint2 raw) {
  uint4 out;
  e4m3x4_to_bf16(raw.x, out.x, out.y);
  e4m3x4_to_bf16(raw.y, out.z, out.w);
  *reinterpret_cast<uint4*>(dst) = out;
}

// Shared memory of a block: queries (1 or 2 terms) and `stages` blocks of keys and values (1 or 2 terms each).
constexpr int64_t smem_bytes(int64_t d, AttentionMode mode, int row_warps, int stages = 1) {
  return ((two_term_q(mode) ? 2 : 1) * 16 * row_warps + stages * (two_term_kv(mode) ? 4 : 2) * kKeys) * (d + kPad) * 2;
}
constexpr int64_t kMaxSmem = 227 * 1024;  // opt-in limit of an H100/H200 block

// 8 f32 -> the bf16 rounding residuals (second terms), 16 bytes in shared memory.
__device__ __forceinline__ void store8_residual(__nv_bfloat16* dst, const float* src) {
  const float4 a = *reinterpret_cast<const float4*>(src), b = *reinterpret_cast<const float4*>(src + 4);
  *reinterpret_cast<uint4*>(dst) =
      make_uint4(pack_residual(a.x, a.y), pack_residual(a.z, a.w), pack_residual(b.x, b.y), pack_residual(b.z, b.w));
}

// STAGES 2: the next block of keys is loaded (cp.async) while this one is computed. Decode tiles (few rows, one
// compute warp) are load-latency bound without it.
template <int D, AttentionMode MODE, int STAGES>
__global__ void __launch_bounds__(256, 1) flash_attention_kernel(AttentionParams p) {
  pdl_launch_dependents();
  pdl_wait();
  constexpr int DG = D > 256 ? 2 : 1;  // warps sharing a row group, each owning D / DG output columns
  constexpr int DS = D / DG;
  constexpr int SD = D + kPad;  // shared row stride (elements)
  constexpr bool Q2 = two_term_q(MODE), KV2 = two_term_kv(MODE), FP8 = fp8_kv(MODE);
  // Fp8 caches hold keys / k_scale: fresh keys are rounded the same way and the scores scaled back.
  const float k_inv = FP8 ? 1.0f / p.k_scale : 1.0f, score_scale = FP8 ? p.scale * p.k_scale : p.scale;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int RW = p.row_warps, M = 16 * RW;
  __nv_bfloat16* q_hi = reinterpret_cast<__nv_bfloat16*>(smem_raw);  // [M][SD]
  __nv_bfloat16* q_lo = q_hi + M * SD;                               // [M][SD] when Q2
  // Stage i: k_s, v_s and (KV2) k_lo, v_lo, each [kKeys][SD], at kv_stage + i * kStageElems.
  constexpr int kStageElems = (KV2 ? 4 : 2) * kKeys * SD;
  __nv_bfloat16* kv_stage = q_hi + (Q2 ? 2 : 1) * M * SD;

  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32, g = lane / 4, t = lane % 4;
  const int rw = warp % RW, dg = warp / RW;
  const bool compute_warp = warp < RW * DG;  // the others only help staging K/V (p.block_warps)
  const FlashTile f = flash_tile(p);
  const AttentionSeq& s = f.s;
  const int64_t kvh = f.kvh, valid_rows = f.valid_rows, Hkv = p.n_kv_heads;

  // Queries -> bf16 (hi, lo) rows in shared memory; rows past the tile are zero.
  for (int64_t i = threadIdx.x; i < int64_t(M) * (D / 8); i += blockDim.x) {
    const int64_t m = i / (D / 8), c = (i % (D / 8)) * 8;
    uint4 hi, lo;
    query_chunk<D>(p, f, m, c, hi, lo);
    *reinterpret_cast<uint4*>(q_hi + m * SD + c) = hi;
    if constexpr (Q2) *reinterpret_cast<uint4*>(q_lo + m * SD + c) = lo;
  }
  int64_t klo = 0, khi = -1;
  flash_keys(p, f, kKeys, klo, khi);  // also publishes the queries

  // This thread's two rows (g and g + 8 of its warp's 16).
  bool valid[2];
  int64_t lo[2] = {0, 0}, hi[2] = {-1, -1}, out_row[2] = {0, 0}, head[2] = {0, 0};
#pragma unroll
  for (int h = 0; h < 2; ++h)
    valid[h] = compute_warp && flash_row(p, f, rw * 16 + g + 8 * h, out_row[h], head[h], lo[h], hi[h]);
  const bool warp_active = compute_warp && rw * 16 < valid_rows;

  float o[DS / 8][4];
#pragma unroll
  for (int i = 0; i < DS / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};

  // Element offsets of key `pos`, columns from c: in the cache (ring slot or linear) and in the step's fresh rows.
  auto cache_at = [&](int64_t pos, int c) { return (cache_slot(s, pos) * Hkv + kvh) * D + c; };
  auto fresh_at = [&](int64_t pos, int c) { return ((s.row0 + pos - s.chunk_start) * Hkv + kvh) * D + c; };
  // Loads keys kb .. kb + kKeys - 1 into the stage at `base` (cache rows by cp.async: committed as one group).
  auto stage = [&](int64_t kb, __nv_bfloat16* base) {
    __nv_bfloat16* k_s = base;
    __nv_bfloat16* v_s = base + kKeys * SD;
    __nv_bfloat16* k_lo = base + 2 * kKeys * SD;
    __nv_bfloat16* v_lo = base + 3 * kKeys * SD;
    if constexpr (FP8) {
      // A batch of cache rows' bytes is loaded before any is widened, so that the loads are in flight together
      // (there is no cp.async that converts; load-then-convert item by item waits out the latency each time).
      constexpr int kBatch = 8;
      const int n = kKeys * (D / 8), step = int(blockDim.x);
      for (int i0 = int(threadIdx.x); i0 < n; i0 += kBatch * step) {
        uint2 rk[kBatch], rv[kBatch];
#pragma unroll
        for (int b = 0; b < kBatch; ++b) {
          const int i = i0 + b * step, j = i / (D / 8), c = (i % (D / 8)) * 8;
          const int64_t pos = kb + j;
          if (i < n && pos <= khi && pos < s.chunk_start) {
            const int64_t at = cache_at(pos, c);
            rk[b] = *reinterpret_cast<const uint2*>(static_cast<const uint8_t*>(s.cache_k) + at);
            rv[b] = *reinterpret_cast<const uint2*>(static_cast<const uint8_t*>(s.cache_v) + at);
          }
        }
#pragma unroll
        for (int b = 0; b < kBatch; ++b) {
          const int i = i0 + b * step, j = i / (D / 8), c = (i % (D / 8)) * 8;
          if (i >= n) break;
          const int64_t pos = kb + j;
          const int o = j * SD + c;
          if (pos > khi) {
            *reinterpret_cast<uint4*>(k_s + o) = make_uint4(0, 0, 0, 0);
            *reinterpret_cast<uint4*>(v_s + o) = make_uint4(0, 0, 0, 0);
          } else if (pos >= s.chunk_start) {
            store8_via_e4m3(k_s + o, p.k + fresh_at(pos, c), k_inv);
            store8_via_e4m3(v_s + o, p.v + fresh_at(pos, c), 1.0f);
          } else {
            store8_from_e4m3(k_s + o, rk[b]);
            store8_from_e4m3(v_s + o, rv[b]);
          }
        }
      }
      cp_async_commit();  // an empty group: the callers' wait counts stay uniform
    } else {
      for (int i = int(threadIdx.x); i < kKeys * (D / 8); i += int(blockDim.x)) {
        const int j = i / (D / 8), c = (i % (D / 8)) * 8;
        const int64_t pos = kb + j;
        const int o = j * SD + c;
        const float *fk = nullptr, *fv = nullptr;  // f32 source rows (fresh, or an f32 cache)
        if (pos > khi) {                           // past the range: zeros (masked; finite so that 0 x V stays 0)
          *reinterpret_cast<uint4*>(k_s + o) = make_uint4(0, 0, 0, 0);
          *reinterpret_cast<uint4*>(v_s + o) = make_uint4(0, 0, 0, 0);
          if constexpr (KV2) {
            *reinterpret_cast<uint4*>(k_lo + o) = make_uint4(0, 0, 0, 0);
            *reinterpret_cast<uint4*>(v_lo + o) = make_uint4(0, 0, 0, 0);
          }
        } else if (pos >= s.chunk_start) {
          fk = p.k + fresh_at(pos, c);
          fv = p.v + fresh_at(pos, c);
        } else {
          const int64_t at = cache_at(pos, c);
          if constexpr (KV2) {
            fk = static_cast<const float*>(s.cache_k) + at;
            fv = static_cast<const float*>(s.cache_v) + at;
          } else {
            cp_async16(k_s + o, static_cast<const uint16_t*>(s.cache_k) + at);
            cp_async16(v_s + o, static_cast<const uint16_t*>(s.cache_v) + at);
          }
        }
        if (fk) {
          store8(k_s + o, fk);
          store8(v_s + o, fv);
          if constexpr (KV2) {
            store8_residual(k_lo + o, fk);
            store8_residual(v_lo + o, fv);
          }
        }
      }
      (void)k_lo;
      (void)v_lo;
      cp_async_commit();
    }
  };
  if constexpr (STAGES == 2) {
    if (klo <= khi) stage(klo, kv_stage);
  }
  for (int64_t kb = klo, it = 0; kb <= khi; kb += kKeys, ++it) {
    __syncthreads();  // every warp is done reading the stage about to be overwritten
    __nv_bfloat16* k_s = kv_stage + (STAGES == 2 ? (it & 1) : 0) * kStageElems;
    __nv_bfloat16* v_s = k_s + kKeys * SD;
    if constexpr (STAGES == 2) {
      if (kb + kKeys <= khi)
        stage(kb + kKeys, kv_stage + ((it + 1) & 1) * kStageElems);
      else
        cp_async_commit();  // an empty group keeps the wait count below uniform
      cp_async_wait_one();  // this block's group is done; the next one may still be in flight
    } else {
      stage(kb, k_s);
      cp_async_wait_all();
    }
    __syncthreads();
    if (!warp_active) continue;

    // S = Q Kᵀ for this warp's 16 rows x kKeys keys.
    float sc[kKeys / 8][4];
#pragma unroll
    for (int nt = 0; nt < kKeys / 8; ++nt) sc[nt][0] = sc[nt][1] = sc[nt][2] = sc[nt][3] = 0.0f;
#pragma unroll 4
    for (int kk = 0; kk < D / 16; ++kk) {
      const __nv_bfloat16* qa = q_hi + (rw * 16 + g) * SD + kk * 16 + 2 * t;
      const uint32_t a[4] = {ld_u32(qa), ld_u32(qa + 8 * SD), ld_u32(qa + 8), ld_u32(qa + 8 * SD + 8)};
      uint32_t al[4];
      if constexpr (Q2) {
        const __nv_bfloat16* ql = qa + M * SD;
        al[0] = ld_u32(ql);
        al[1] = ld_u32(ql + 8 * SD);
        al[2] = ld_u32(ql + 8);
        al[3] = ld_u32(ql + 8 * SD + 8);
      }
#pragma unroll
      for (int nt = 0; nt < kKeys / 8; ++nt) {
        const __nv_bfloat16* kp = k_s + (nt * 8 + g) * SD + kk * 16 + 2 * t;
        const uint32_t b0 = ld_u32(kp), b1 = ld_u32(kp + 8);
        mma(sc[nt], a, b0, b1);
        if constexpr (Q2) mma(sc[nt], al, b0, b1);
        if constexpr (KV2) {
          const __nv_bfloat16* kl = kp + 2 * kKeys * SD;  // k_lo of this stage
          mma(sc[nt], a, ld_u32(kl), ld_u32(kl + 8));
        }
      }
    }
    // Mask, online softmax (each row's 32 scores live in the 4 lanes of a quad).
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float mx = -INFINITY;
#pragma unroll
      for (int nt = 0; nt < kKeys / 8; ++nt)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int64_t key = kb + nt * 8 + 2 * t + e;
          float& x = sc[nt][2 * h + e];
          x = valid[h] && key >= lo[h] && key <= hi[h] && key <= khi ? x * score_scale : -INFINITY;
          mx = fmaxf(mx, x);
        }
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m_run[h], mx);
      const float m_use = m_new == -INFINITY ? 0.0f : m_new;
      const float corr = expf(m_run[h] - m_use);
      m_run[h] = m_new;
      l_run[h] *= corr;
#pragma unroll
      for (int i = 0; i < DS / 8; ++i) {
        o[i][2 * h] *= corr;
        o[i][2 * h + 1] *= corr;
      }
#pragma unroll
      for (int nt = 0; nt < kKeys / 8; ++nt)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          float& x = sc[nt][2 * h + e];
          x = expf(x - m_use);
          l_run[h] += x;
        }
    }
    // O += P V over this warp's DS columns.
#pragma unroll
    for (int ks = 0; ks < kKeys / 16; ++ks) {
      const float(&s0)[4] = sc[2 * ks];
      const float(&s1)[4] = sc[2 * ks + 1];
      const uint32_t pa[4] = {pack_bf16(s0[0], s0[1]), pack_bf16(s0[2], s0[3]), pack_bf16(s1[0], s1[1]),
                              pack_bf16(s1[2], s1[3])};
      uint32_t pl[4];
      if constexpr (Q2) {
        pl[0] = pack_residual(s0[0], s0[1]);
        pl[1] = pack_residual(s0[2], s0[3]);
        pl[2] = pack_residual(s1[0], s1[1]);
        pl[3] = pack_residual(s1[2], s1[3]);
      }
      const __nv_bfloat16* vrow = v_s + (ks * 16 + ((lane >> 3) & 1) * 8 + (lane & 7)) * SD + dg * DS + (lane >> 4) * 8;
#pragma unroll
      for (int n16 = 0; n16 < DS / 16; ++n16) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, vrow + n16 * 16);
        mma(o[2 * n16], pa, b[0], b[1]);
        mma(o[2 * n16 + 1], pa, b[2], b[3]);
        if constexpr (Q2) {
          mma(o[2 * n16], pl, b[0], b[1]);
          mma(o[2 * n16 + 1], pl, b[2], b[3]);
        }
        if constexpr (KV2) {
          ldmatrix_x4_trans(b, vrow + n16 * 16 + 2 * kKeys * SD);  // v_lo of this stage
          mma(o[2 * n16], pa, b[0], b[1]);
          mma(o[2 * n16 + 1], pa, b[2], b[3]);
        }
      }
    }
  }

  store_flash_rows<D, DS / 8>(p, f.split, &o[0][0], dg * DS, m_run, l_run, valid, out_row, head, dg == 0, 1.0f);
}

// The (row, head) pairs a split kernel wrote partials for: every one (tiles == nullptr: block = row x heads + head),
// or, in a step whose other rows took the other kernel, its tiles x queries_per_tile x the GQA group.
struct MergeParams {
  const int32_t* tiles = nullptr;  // the split kernel's tiles, or nullptr
  int64_t queries_per_tile = 1;
  int64_t heads_per_tile = 1;  // query heads of a tile's row: its heads are tiles[3 t + 2] x heads_per_tile + h
  int64_t splits = 1;
};

// One block per (row, head): out = sum_i acc_i e^(m_i - M) / sum_i l_i e^(m_i - M), M = max_i m_i. The split
// weights go to shared memory first (all splits loaded at once), then each thread sums its columns over the
// splits (coalesced across threads): a decode step's merge is latency-bound, so no load waits on another (the
// tile lookup of a mixed step adds two dependent loads; a pure step indexes directly).
__global__ void __launch_bounds__(kMergeThreads) merge_kernel(AttentionParams p, MergeParams mp) {
  pdl_launch_dependents();
  pdl_wait();
  __shared__ float weight[kMergeMaxSplits];  // e^(m_i - M), or 0 for an empty split (m_i = -inf)
  int64_t rh = blockIdx.x;
  if (mp.tiles) {
    // 32-bit divisions (the grid is): a 64-bit one is a ~70-instruction call on a batch-1 layer's chain.
    const uint32_t G = uint32_t(mp.heads_per_tile), per_tile = uint32_t(mp.queries_per_tile) * G;
    const uint32_t tile = blockIdx.x / per_tile, query = (blockIdx.x - tile * per_tile) / G, h = blockIdx.x % G;
    const AttentionSeq& s = p.seqs[mp.tiles[3 * tile]];
    const int64_t first_q = mp.tiles[3 * tile + 1], head0 = mp.tiles[3 * tile + 2] * G;
    if (first_q + query >= s.n_rows) return;  // past the sequence's rows (uniform per block)
    rh = (s.row0 + first_q + query) * p.n_heads + head0 + h;
  }
  const int64_t d = p.head_dim, splits = mp.splits;
  const float* parts = p.partial + rh * splits * (d + 2);
  const auto fmax_op = [](float a, float b) { return fmaxf(a, b); };
  float big = -INFINITY;
  for (int64_t i = threadIdx.x; i < splits; i += kMergeThreads) big = fmaxf(big, parts[i * (d + 2)]);
  big = block_reduce<kMergeThreads>(big, fmax_op, -INFINITY);
  float total = 0.0f;
  for (int64_t i = threadIdx.x; i < splits; i += kMergeThreads) {
    const float mi = parts[i * (d + 2)];
    const float w = mi == -INFINITY ? 0.0f : expf(mi - big);
    weight[i] = w;
    if (mi != -INFINITY) total += parts[i * (d + 2) + 1] * w;
  }
  total = block_reduce<kMergeThreads>(
      total, [](float a, float b) { return a + b; }, 0.0f);  // also syncs weight
  const float inv = 1.0f / total;
  float* out = p.out + rh * d;
  for (int64_t c = threadIdx.x; c < d; c += kMergeThreads) {
    float sum = 0.0f;
#pragma unroll 8
    for (int64_t i = 0; i < splits; ++i)
      if (weight[i] != 0.0f) sum += parts[i * (d + 2) + 2 + c] * weight[i];
    out[c] = sum * inv;
  }
}

template <int D, AttentionMode MODE, int STAGES>
void launch(const AttentionParams& p, cudaStream_t stream) {
  constexpr int DG = D > 256 ? 2 : 1;
  const int64_t bytes = smem_bytes(D, MODE, p.row_warps, STAGES);
  UG_CUDA_REQUIRE(bytes <= kMaxSmem, "attention",
                  "row_warps " + std::to_string(p.row_warps) + " with " + std::to_string(STAGES) + " stages needs " +
                      std::to_string(bytes) + " bytes of shared memory at head_dim " + std::to_string(D) +
                      " (use plan_attention)");
  if (bytes > 48 * 1024)  // opt in above the default 48 KiB (per device, so set on every launch: it is cheap)
    UG_CUDA_CHECK(cudaFuncSetAttribute(flash_attention_kernel<D, MODE, STAGES>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
  launch_kernel("flash_attention_kernel", flash_attention_kernel<D, MODE, STAGES>, unsigned(p.n_tiles * p.splits),
                unsigned(32 * std::max(p.row_warps * DG, p.block_warps)), size_t(bytes), stream, p);
}

template <int D, AttentionMode MODE>
void launch_stages(const AttentionParams& p, cudaStream_t stream) {
  if (p.stages == 2)
    launch<D, MODE, 2>(p, stream);
  else
    launch<D, MODE, 1>(p, stream);
}

template <int D>
void launch_dim(const AttentionParams& p, cudaStream_t stream) {
  switch (p.mode) {
    case AttentionMode::Fast:
      launch_stages<D, AttentionMode::Fast>(p, stream);
      break;
    case AttentionMode::Exact:
      launch_stages<D, AttentionMode::Exact>(p, stream);
      break;
    case AttentionMode::ExactF32Kv:
      launch_stages<D, AttentionMode::ExactF32Kv>(p, stream);
      break;
    case AttentionMode::ExactFp8Kv:
      launch_stages<D, AttentionMode::ExactFp8Kv>(p, stream);
      break;
  }
}

void launch_flash(const AttentionParams& p, cudaStream_t stream) {
  const char* op = "attention";
  switch (p.head_dim) {
    case 16:
      launch_dim<16>(p, stream);
      break;
    case 32:
      launch_dim<32>(p, stream);
      break;
    case 64:
      launch_dim<64>(p, stream);
      break;
    case 128:
      launch_dim<128>(p, stream);
      break;
    case 256:
      launch_dim<256>(p, stream);
      break;
    case 512:
      launch_dim<512>(p, stream);
      break;
    default:
      UG_CUDA_REQUIRE(false, op,
                      "head_dim " + std::to_string(p.head_dim) + " is not supported (16, 32, 64, 128, 256 or 512)");
  }
}

// Floats of the split partials, rounded up to 16 bytes (the bf16 fresh k / v copy of the wgmma kernel follows).
int64_t split_partial_floats(int64_t splits, int64_t rows, int64_t n_heads, int64_t head_dim) {
  return splits > 1 ? (rows * n_heads * splits * (head_dim + 2) + 3) / 4 * 4 : 0;
}

// Query heads of one decode tile: the whole group on the MQA decode kernel, else the CUDA-core kernel's share.
int64_t heads_per_decode_tile(bool mqa, int64_t head_dim, int64_t group) {
  return mqa ? group : decode_tile_heads(head_dim, group);
}

// The decode tiles of one-row sequence i: one per group of heads_per_decode_tile query heads.
void add_decode_tiles(AttentionPlan& plan, size_t i, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim) {
  const int64_t tiles = n_heads / heads_per_decode_tile(plan.mqa, head_dim, n_heads / n_kv_heads);
  for (int64_t t = 0; t < tiles; ++t) plan.tiles.insert(plan.tiles.end(), {int32_t(i), 0, int32_t(t)});
  plan.n_decode_tiles += tiles;
}

// A decode step (one row per sequence): one tile per (sequence, group of query heads), keys split until the chip
// holds the kernel's target blocks. The CUDA-core kernel: two blocks per SM, at least 8 keys per warp in a split;
// the MQA kernel: one ~150 KB block per SM, so the splits round down (a block past the target is a second wave),
// and at least kMqaMinSplitSteps steps of keys per split.
AttentionPlan plan_decode(std::span<const int64_t> seq_rows, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                          int64_t max_keys, int64_t max_splits, bool mqa) {
  static const int64_t target = env_knob("UG_ATTN_DECODE_TARGET", kDecodeTargetBlocks);
  static const int64_t mqa_target = env_knob("UG_ATTN_MQA_TARGET", kMqaTargetBlocks);
  AttentionPlan plan;
  plan.mqa = mqa;
  for (size_t i = 0; i < seq_rows.size(); ++i) add_decode_tiles(plan, i, n_heads, n_kv_heads, head_dim);
  const int64_t tiles = std::max<int64_t>(1, plan.n_tiles()), want = mqa ? mqa_target : target;
  if (tiles < want) {
    const int64_t split_keys = mqa ? kMqaMinSplitSteps * mqa_decode_step_keys() : kDecodeWarps * 8;
    plan.decode_splits = std::min({mqa ? want / tiles : (want + tiles - 1) / tiles, std::max<int64_t>(1, max_splits),
                                   kMergeMaxSplits, std::max<int64_t>(1, (max_keys + split_keys - 1) / split_keys)});
  }
  return plan;
}

}  // namespace

AttentionPlan plan_attention(std::span<const int64_t> seq_rows, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                             AttentionMode mode, int64_t max_keys, int64_t max_splits, bool allow_decode_kernel,
                             bool allow_wgmma) {
  const char* op = "plan_attention";
  UG_CUDA_REQUIRE(
      n_kv_heads >= 1 && n_heads >= n_kv_heads && n_heads % n_kv_heads == 0, op,
      "n_heads " + std::to_string(n_heads) + " must be a multiple of n_kv_heads " + std::to_string(n_kv_heads));
  const int64_t group = n_heads / n_kv_heads;
  UG_CUDA_REQUIRE(group <= 64, op, "GQA group " + std::to_string(group) + " (query heads per kv head) exceeds 64");
  static const bool decode_enabled = !env_knob_off("UG_ATTN_DECODE");
  // A group that spans several decode tiles reads every key once per tile (from L2): a win only while the flash
  // kernel is latency-bound, i.e. for a few sequences.
  static const int64_t spanning_max_seqs = env_knob("UG_ATTN_SPANNING_MAX_SEQS", kSpanningDecodeMaxSeqs);
  const int64_t one_row = std::count(seq_rows.begin(), seq_rows.end(), int64_t(1));
  static const bool mqa_enabled = !env_knob_off("UG_ATTN_MQA");
  // 16-head groups: the one-row sequences take the MQA decode kernel beyond spanning_max_seqs of them (up to that
  // the CUDA-core kernel's spanning tiles are faster: b1 21 vs 23 us at context 1k, 54 vs 64 at 16k with the fp8
  // cache; merging many splits of 16 rows dominates there).
  const bool mqa =
      allow_decode_kernel && mqa_enabled && one_row > spanning_max_seqs && mqa_decode_supports(head_dim, group, mode);
  const bool decode_kernel = mqa || (allow_decode_kernel && decode_enabled && decode_kernel_supports(head_dim, group) &&
                                     (decode_tile_heads(head_dim, group) == group || one_row <= spanning_max_seqs));
  // The decode kernel takes the one-row sequences; the flash kernel the rest.
  const auto by_decode = [&](int64_t rows) { return decode_kernel && rows == 1; };
  int64_t most_rows = 1;
  bool any_flash = false;
  for (int64_t n : seq_rows) {
    if (by_decode(n)) continue;
    any_flash = true;
    most_rows = std::max(most_rows, n);
  }
  if (!any_flash && !seq_rows.empty())
    return plan_decode(seq_rows, n_heads, n_kv_heads, head_dim, max_keys, max_splits, mqa);
  AttentionPlan plan;
  plan.mqa = mqa;
  static const bool wgmma_enabled = !env_knob_off("UG_ATTN_WGMMA");
  plan.wgmma = allow_wgmma && wgmma_enabled && wgmma_attention_supports(head_dim, group, mode) &&
               most_rows * group >= wgmma_tile_rows(head_dim);
  plan.n_kv_heads = n_kv_heads;
  const int64_t want_rows = std::min<int64_t>(64, std::max(group, most_rows * group));
  plan.row_warps = want_rows <= 16 ? 1 : want_rows <= 32 ? 2 : 4;
  while (plan.row_warps > 1 && smem_bytes(head_dim, mode, plan.row_warps) > kMaxSmem) plan.row_warps /= 2;
  UG_CUDA_REQUIRE(16 * plan.row_warps >= group, op,
                  "GQA group " + std::to_string(group) + " does not fit the shared memory of one block at head_dim " +
                      std::to_string(head_dim));
  plan.queries_per_tile =
      plan.wgmma ? wgmma_tile_rows(head_dim) / group : std::max<int64_t>(1, 16 * plan.row_warps / group);
  for (size_t i = 0; i < seq_rows.size(); ++i) {
    if (by_decode(seq_rows[i])) continue;
    // Later queries see more keys (causal): their tiles go first so the long ones start early.
    const int64_t n_q_tiles = (seq_rows[i] + plan.queries_per_tile - 1) / plan.queries_per_tile;
    for (int64_t qt = n_q_tiles - 1; qt >= 0; --qt)
      for (int64_t kvh = 0; kvh < n_kv_heads; ++kvh)
        plan.tiles.insert(plan.tiles.end(), {int32_t(i), int32_t(qt * plan.queries_per_tile), int32_t(kvh)});
  }
  static const int64_t min_warps = std::min<int64_t>(8, env_knob("UG_ATTN_MIN_WARPS", kMinBlockWarps));  // read once
  static const int64_t target = env_knob("UG_ATTN_TARGET_BLOCKS", kTargetBlocks);
  static const int64_t decode_target = env_knob("UG_ATTN_DECODE_FLASH_TARGET", kDecodeFlashTargetBlocks);
  static const int64_t max_stages = std::min<int64_t>(2, env_knob("UG_ATTN_STAGES", 2));
  plan.block_warps = int(min_warps);
  // Double-buffered K/V for one-warp tiles (decode) while two blocks still fit an SM (measured: at head_dim 512 the
  // second stage costs the second block and is slower); prefill tiles keep one stage.
  plan.stages = max_stages == 2 && plan.row_warps == 1 && smem_bytes(head_dim, mode, 1, 2) <= kMaxSmem / 2 ? 2 : 1;
  // A mixed step: the one-row sequences' decode tiles after the flash tiles, unsplit (the flash tiles split when
  // all of them together leave the chip idle).
  for (size_t i = 0; i < seq_rows.size(); ++i)
    if (by_decode(seq_rows[i])) add_decode_tiles(plan, i, n_heads, n_kv_heads, head_dim);
  const int64_t tiles = std::max<int64_t>(1, plan.n_tiles());
  // The wgmma kernel holds one 192 KiB block per SM: split until the SMs are busy.
  const int64_t want_blocks = plan.wgmma ? kWgmmaTargetBlocks : most_rows == 1 ? decode_target : target;
  if (tiles < want_blocks) {
    plan.splits = std::min({(want_blocks + tiles - 1) / tiles, std::max<int64_t>(1, max_splits), kMergeMaxSplits,
                            std::max<int64_t>(1, (max_keys + kKeys - 1) / kKeys)});
  }
  return plan;
}

int64_t attention_partial_floats(const AttentionPlan& plan, int64_t rows, int64_t n_heads, int64_t head_dim) {
  const int64_t splits = std::max(plan.splits, plan.decode_splits);
  const int64_t fresh_copy = plan.wgmma ? rows * plan.n_kv_heads * head_dim : 0;  // 2 x bf16 = 1 float each
  return split_partial_floats(splits, rows, n_heads, head_dim) + fresh_copy;
}

void attention(const AttentionParams& p, cudaStream_t stream) {
  const char* op = "attention";
  UG_CUDA_REQUIRE(p.q && p.k && p.v && p.out && p.seqs && p.tiles, op, "q, k, v, out, seqs and tiles must be set");
  UG_CUDA_REQUIRE(
      p.rows >= 1 && p.n_seqs >= 1 && p.n_tiles >= 0 && p.n_decode_tiles >= 0 && p.n_tiles + p.n_decode_tiles >= 1, op,
      "rows " + std::to_string(p.rows) + ", n_seqs " + std::to_string(p.n_seqs) + " and tiles (" +
          std::to_string(p.n_tiles) + " flash + " + std::to_string(p.n_decode_tiles) + " decode) must be >= 1");
  UG_CUDA_REQUIRE(
      p.n_kv_heads >= 1 && p.n_heads >= p.n_kv_heads && p.n_heads % p.n_kv_heads == 0, op,
      "n_heads " + std::to_string(p.n_heads) + " must be a multiple of n_kv_heads " + std::to_string(p.n_kv_heads));
  UG_CUDA_REQUIRE(p.row_warps == 1 || p.row_warps == 2 || p.row_warps == 4, op,
                  "row_warps " + std::to_string(p.row_warps) + " must be 1, 2 or 4 (use plan_attention)");
  UG_CUDA_REQUIRE(
      p.wgmma || (p.queries_per_tile >= 1 && p.queries_per_tile * (p.n_heads / p.n_kv_heads) <= 16 * p.row_warps), op,
      "queries_per_tile " + std::to_string(p.queries_per_tile) + " does not fit the tile rows");
  UG_CUDA_REQUIRE(p.window >= 0 && p.splits >= 1 && p.decode_splits >= 1, op,
                  "window must be >= 0, splits and decode_splits >= 1");
  UG_CUDA_REQUIRE(p.splits == 1 || p.decode_splits == 1, op, "only one of the two kernels may split keys");
  UG_CUDA_REQUIRE(p.stages == 1 || p.stages == 2, op, "stages " + std::to_string(p.stages) + " must be 1 or 2");
  UG_CUDA_REQUIRE(p.mode != AttentionMode::ExactFp8Kv || valid_k_scale(p.k_scale), op,
                  "k_scale " + std::to_string(p.k_scale) + " must be a power of two >= 1");
  const int64_t splits = std::max(p.splits, p.decode_splits);
  UG_CUDA_REQUIRE(splits == 1 || p.partial, op, "partial scratch must be set when keys are split");
  UG_CUDA_REQUIRE(splits <= kMergeMaxSplits, op,
                  "splits " + std::to_string(splits) + " exceeds " + std::to_string(kMergeMaxSplits));
  UG_CUDA_REQUIRE(p.rows * p.n_heads < 0x7fffffff, op, "rows x heads out of range");
  const int64_t G = p.n_heads / p.n_kv_heads;
  if (p.n_decode_tiles > 0 && p.mqa)
    UG_CUDA_REQUIRE(mqa_decode_supports(p.head_dim, G, p.mode), op,
                    "the MQA decode kernel takes one-row tiles of a 16-head group at head_dim 256 / 512 without the "
                    "f32 cache; got head_dim " +
                        std::to_string(p.head_dim) + ", group " + std::to_string(G) + " (use plan_attention)");
  if (p.n_decode_tiles > 0 && !p.mqa)
    UG_CUDA_REQUIRE(decode_kernel_supports(p.head_dim, G), op,
                    "the decode kernel takes head_dim 128 / 256 / 512; got head_dim " + std::to_string(p.head_dim) +
                        ", group " + std::to_string(G) + " (use plan_attention)");
  if (p.wgmma) {
    UG_CUDA_REQUIRE(
        p.n_tiles > 0 && wgmma_attention_supports(p.head_dim, G, p.mode), op,
        "the wgmma kernel takes head_dim 256 / 512 in modes Fast / Exact / ExactFp8Kv with a GQA group that "
        "divides its tile rows, on compute capability 9.0; got head_dim " +
            std::to_string(p.head_dim) + ", group " + std::to_string(G) + " (use plan_attention)");
    UG_CUDA_REQUIRE(p.queries_per_tile * G == wgmma_tile_rows(p.head_dim), op,
                    "queries_per_tile " + std::to_string(p.queries_per_tile) + " x group " + std::to_string(G) +
                        " must be the wgmma kernel's " + std::to_string(wgmma_tile_rows(p.head_dim)) + " tile rows");
    UG_CUDA_REQUIRE(p.partial, op, "partial scratch must be set for the wgmma kernel (its bf16 copy of k / v)");
    auto* fresh = reinterpret_cast<uint16_t*>(p.partial + split_partial_floats(splits, p.rows, p.n_heads, p.head_dim));
    launch_wgmma_attention(p, fresh, stream);
  } else if (p.n_tiles > 0) {
    launch_flash(p, stream);
  }
  if (p.n_decode_tiles > 0) {
    if (p.mqa)
      launch_mqa_decode_attention(p, stream);
    else
      launch_decode_attention(p, stream);
  }
  // Merge the split kernel's partials: every row when it ran alone, else the rows of its tiles.
  const bool mixed = p.n_tiles > 0 && p.n_decode_tiles > 0;
  if (splits > 1 && !mixed) {
    launch_kernel("attention merge_kernel", merge_kernel, unsigned(p.rows * p.n_heads), kMergeThreads, 0, stream, p,
                  MergeParams{.splits = splits});
  } else if (p.splits > 1) {
    launch_kernel(
        "attention merge_kernel", merge_kernel, unsigned(p.n_tiles * p.queries_per_tile * G), kMergeThreads, 0, stream,
        p,
        MergeParams{.tiles = p.tiles, .queries_per_tile = p.queries_per_tile, .heads_per_tile = G, .splits = p.splits});
  } else if (p.decode_splits > 1) {
    const int64_t heads = heads_per_decode_tile(p.mqa, p.head_dim, G);
    launch_kernel("attention merge_kernel", merge_kernel, unsigned(p.n_decode_tiles * heads), kMergeThreads, 0, stream,
                  p,
                  MergeParams{.tiles = p.tiles + 3 * p.n_tiles,
                              .queries_per_tile = 1,
                              .heads_per_tile = heads,
                              .splits = p.decode_splits});
  }
}

}  // namespace ug::cuda
