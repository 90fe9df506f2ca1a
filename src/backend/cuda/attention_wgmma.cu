// Prefill attention on Hopper's warpgroup MMA (wgmma, sm_90a), for head dims 256 and 512 with a bf16 KV cache
// (modes Fast and Exact): the flash kernel of attention.cu (same tiles, key ranges, splits and partials) with
// S = Q Kᵀ and O += P V issued to the tensor cores by a whole warpgroup at a time instead of mma.sync per warp.
//
// Why: mma.sync per warp re-reads K and V fragments from shared memory for every 16 rows and is issue-bound on
// Hopper (62-83 TFLOP/s at the 12B's prefill shapes); wgmma reads a 64-row A and the whole B block from shared
// memory once per warpgroup.
//
// A block is two warpgroups (256 threads). Head dim 256: each warpgroup owns 64 tile rows (128 per block), all
// 256 output columns (128 f32 accumulators per thread). Head dim 512: both own the same 64 rows and half the
// output columns each (the output does not fit one warpgroup's registers) and the scores (split_scores says
// how). Queries (two bf16 terms in Exact) are converted into shared memory once; K and V blocks of NK keys are
// double-buffered by cp.async, the step's fresh rows from the bf16 copy convert_fresh_kv_kernel makes first.
// Shared-memory operands use wgmma's no-swizzle layout (wgmma.cuh): element (row r, 8-column chunk c) of an
// R-row operand at byte (c x R / 8 + r / 8) x 128 + (r % 8) x 16. K is the K-major B of Q Kᵀ; V, stored the same
// way, the N-major (transposed) B of P V.
#include <cuda_bf16.h>

#include <string>

#include "backend/cuda/attention_internal.cuh"
#include "backend/cuda/cp_async.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/wgmma.cuh"

namespace ug::cuda {
namespace {

constexpr int kThreads = 256;          // two warpgroups
constexpr int kGroupCols = 256;        // output columns one warpgroup accumulates (128 f32 registers per thread)
constexpr int kKeyBlockElems = 16384;  // keys x head dim of a K block: 64 x 256 or 32 x 512 (half in Exact)

template <int D>
__host__ __device__ constexpr int col_groups() {  // warpgroups sharing a row group
  return D / kGroupCols;
}
template <int D>
__host__ __device__ constexpr int rows_per_tile() {
  return 64 * 2 / col_groups<D>();
}
// Keys per block: queries + two stages of K and V take 192 KiB of shared memory in every mode (+ the score
// exchange, split_scores).
template <int D, bool Q2>
__host__ __device__ constexpr int keys_per_block() {
  return (Q2 ? kKeyBlockElems / 2 : kKeyBlockElems) / D;
}
// Head dim 512 with two-term queries: each warpgroup computes the scores over half of d and the halves are
// exchanged through shared memory (measured: 12.7 -> 11.6 ms at 8,192 rows); with one-term queries the scores are
// cheap enough that the exchange's barrier costs more than it saves (8.8 -> 9.1 ms), so both compute all of them.
template <int D, bool Q2>
__host__ __device__ constexpr bool split_scores() {
  return col_groups<D>() == 2 && Q2;
}
template <int D, bool Q2>
__host__ __device__ constexpr int exchange_bytes() {
  return split_scores<D, Q2>() ? kThreads * (keys_per_block<D, Q2>() / 2) * 4 : 0;
}
template <int D, bool Q2>
constexpr int smem_bytes() {
  return (Q2 ? 2 : 1) * rows_per_tile<D>() * D * 2 + 2 * 2 * keys_per_block<D, Q2>() * D * 2 + exchange_bytes<D, Q2>();
}

// Byte offset of (row r, chunk c of 8 columns) in an R-row no-swizzle operand.
template <int R>
__device__ __forceinline__ int core_offset(int r, int c) {
  return (c * (R / 8) + r / 8) * 128 + (r % 8) * 16;
}

template <int NK>
__device__ __forceinline__ void scores_mma(float (&sc)[NK / 2], uint64_t a, uint64_t b) {
  if constexpr (NK == 16)
    wgmma_ss_n16(sc, a, b, 1);
  else if constexpr (NK == 32)
    wgmma_ss_n32(sc, a, b, 1);
  else
    wgmma_ss_n64(sc, a, b, 1);
}

template <int D, bool Q2>
__global__ void __launch_bounds__(kThreads, 1)
    wgmma_attention_kernel(AttentionParams p, const uint16_t* fresh_k, const uint16_t* fresh_v) {
  pdl_launch_dependents();
  pdl_wait();
#if UG_WGMMA_ARCH
  constexpr int CG = col_groups<D>(), ROWS = rows_per_tile<D>(), NK = keys_per_block<D, Q2>();
  constexpr int kQBytes = ROWS * D * 2, kKBytes = NK * D * 2;
  extern __shared__ __align__(128) unsigned char smem[];
  unsigned char* const q_s = smem;                                       // [terms][ROWS / 64][64-row operand]
  unsigned char* const kv_s = smem + (Q2 ? 2 : 1) * kQBytes;             // [2 stages][K, V]
  float* const exchange = reinterpret_cast<float*>(kv_s + 4 * kKBytes);  // exchange_bytes (split scores)

  const int wg = int(threadIdx.x) / 128, warp = (int(threadIdx.x) % 128) / 32, lane = int(threadIdx.x) % 32;
  const int g = lane / 4, t = lane % 4;
  const int rg = CG == 1 ? wg : 0, cg = CG == 1 ? 0 : wg;  // this warpgroup's 64 rows and 256 columns
  const FlashTile f = flash_tile(p);
  const AttentionSeq& s = f.s;
  const int64_t kvh = f.kvh, valid_rows = f.valid_rows, Hkv = p.n_kv_heads;

  // Queries -> bf16 (hi, lo) operands; rows past the tile are zero. Eight threads in a row write one core matrix.
  for (int i = int(threadIdx.x); i < ROWS * (D / 8); i += kThreads) {
    const int m = (i / (8 * (D / 8))) * 8 + i % 8, c = (i / 8) % (D / 8);
    uint4 hi, lo;
    query_chunk<D>(p, f, m, c * 8, hi, lo);
    unsigned char* dst = q_s + (m / 64) * (64 * D * 2) + core_offset<64>(m % 64, c);
    *reinterpret_cast<uint4*>(dst) = hi;
    if constexpr (Q2) *reinterpret_cast<uint4*>(dst + kQBytes) = lo;
  }
  int64_t klo = 0, khi = -1;
  flash_keys(p, f, NK, klo, khi);  // also publishes the queries

  // This thread's two rows (g and g + 8 of its warp's 16).
  bool valid[2];
  int64_t lo[2] = {0, 0}, hi[2] = {-1, -1}, out_row[2] = {0, 0}, head[2] = {0, 0};
#pragma unroll
  for (int h = 0; h < 2; ++h)
    valid[h] = flash_row(p, f, rg * 64 + warp * 16 + g + 8 * h, out_row[h], head[h], lo[h], hi[h]);
  const bool group_active = rg * 64 < valid_rows;  // uniform over the warpgroup (wgmma needs all of it)

  float o[kGroupCols / 2];
#pragma unroll
  for (int i = 0; i < kGroupCols / 2; ++i) o[i] = 0.0f;
  // Scores in log2 units (exp2 is one instruction): m_run too; partials convert back.
  constexpr float kLog2e = 1.4426950408889634f;
  const float scale2 = p.scale * kLog2e;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};

  // This thread's share of a K / V block: chunk r of it is key j0 + 8 (r / kPerRow), 8-column chunk c0 + 32 (r %
  // kPerRow) (eight threads write one core matrix), so every offset is a constant from the thread's first one.
  constexpr int kChunks = NK * (D / 8) / kThreads, kPerRow = (D / 8) / 32;
  static_assert(kChunks * kThreads == NK * (D / 8) && kThreads == 256, "a block's chunks divide among the threads");
  const int j0 = int(threadIdx.x) % 8, c0 = int(threadIdx.x) / 8;
  const int smem0 = core_offset<NK>(j0, c0);
  const int64_t col0 = kvh * D + c0 * 8;  // element offset of the chunk within a key's row (kv head, columns)
  const int64_t row_elems = Hkv * D;
  const uint16_t* fresh_k0 = fresh_k + (s.row0 - s.chunk_start) * row_elems;  // + pos x row_elems: key pos
  const uint16_t* fresh_v0 = fresh_v + (s.row0 - s.chunk_start) * row_elems;
  // Loads keys kb .. kb + NK - 1 into the stage at `base` (one cp.async group; rows past the range are zeros).
  auto stage = [&](int64_t kb, unsigned char* base) {
#pragma unroll
    for (int r = 0; r < kChunks; ++r) {
      const int64_t pos = kb + j0 + 8 * (r / kPerRow);
      const int64_t col = col0 + 32 * 8 * (r % kPerRow);
      unsigned char* dk = base + smem0 + (32 * (r % kPerRow) * (NK / 8) + r / kPerRow) * 128;
      unsigned char* dv = dk + kKBytes;
      if (pos > khi) {
        *reinterpret_cast<uint4*>(dk) = make_uint4(0, 0, 0, 0);
        *reinterpret_cast<uint4*>(dv) = make_uint4(0, 0, 0, 0);
      } else if (pos >= s.chunk_start) {
        const int64_t at = pos * row_elems + col;
        cp_async16(dk, fresh_k0 + at);
        cp_async16(dv, fresh_v0 + at);
      } else {
        const int64_t at = (s.ring_capacity > 0 ? pos % s.ring_capacity : pos) * row_elems + col;
        cp_async16(dk, static_cast<const uint16_t*>(s.cache_k) + at);
        cp_async16(dv, static_cast<const uint16_t*>(s.cache_v) + at);
      }
    }
    cp_async_commit();
  };
  // Descriptors of k-step 0 (stage 0); a step or stage adds its byte offset / 16 (addresses stay below 2^18, so
  // the 14-bit start field never carries).
  const uint64_t q_desc = smem_desc(q_s + rg * (64 * D * 2), 64 * 16, 128);
  const uint64_t k_desc = smem_desc(kv_s, NK * 16, 128);
  const uint64_t v_desc = smem_desc(kv_s + kKBytes + cg * (kGroupCols / 8) * (NK * 16), 128, NK * 16);
  constexpr uint64_t kQTerm = kQBytes / 16, kStage = 2 * kKBytes / 16;
  const int64_t lo_all = max(lo[0], lo[1]), hi_all = min(min(hi[0], hi[1]), khi);

  if (klo <= khi) stage(klo, kv_s);
  for (int64_t kb = klo, it = 0; kb <= khi; kb += NK, ++it) {
    __syncthreads();  // every warpgroup is done reading the stage about to be overwritten
    if (kb + NK <= khi)
      stage(kb + NK, kv_s + ((it + 1) & 1) * 2 * kKBytes);
    else
      cp_async_commit();  // an empty group keeps the wait count uniform
    cp_async_wait_one();
    __syncthreads();
    if (!group_active) continue;
    const uint64_t stage_off = (it & 1) * kStage;

    // S = Q Kᵀ: 64 rows x NK keys, D / 16 k-steps (two per step with two-term queries).
    float sc[NK / 2];
#pragma unroll
    for (int i = 0; i < NK / 2; ++i) sc[i] = 0.0f;
    wgmma_hold(sc);
    wgmma_fence();
    // Split scores: each warpgroup sums its own half of d (cg), then adds the other's through shared memory.
    constexpr bool kSplit = split_scores<D, Q2>();
    constexpr int kSteps = kSplit ? D / 16 / 2 : D / 16;
    const int kk0 = kSplit ? cg * kSteps : 0;
#pragma unroll
    for (int kk = kk0; kk < kk0 + kSteps; ++kk) {
      const uint64_t b = k_desc + stage_off + kk * (2 * NK * 16 / 16);
      scores_mma<NK>(sc, q_desc + kk * (2 * 64 * 16 / 16), b);
      if constexpr (Q2) scores_mma<NK>(sc, q_desc + kQTerm + kk * (2 * 64 * 16 / 16), b);
    }
    wgmma_commit();
    wgmma_wait<0>();
    wgmma_hold(sc);
    if constexpr (kSplit) {
      // [warpgroup][score i][thread]: a warp's 32 lanes write 32 consecutive floats. Both warpgroups end with
      // own + other = the same sums (addition commutes), so their softmax and P are identical.
      const int lane_in_group = int(threadIdx.x) % 128;
      float* mine = exchange + cg * 128 * (NK / 2) + lane_in_group;
      const float* other = exchange + (1 - cg) * 128 * (NK / 2) + lane_in_group;
#pragma unroll
      for (int i = 0; i < NK / 2; ++i) mine[i * 128] = sc[i];
      __syncthreads();  // both warpgroups take this path together (same rows: group_active is shared)
#pragma unroll
      for (int i = 0; i < NK / 2; ++i) sc[i] += other[i * 128];
    }

    // Mask (only blocks at the edge of a row's range), online softmax (each row's NK scores live in the 4 lanes
    // of a quad).
    const bool interior = valid[0] && valid[1] && kb >= lo_all && kb + NK - 1 <= hi_all;
    float corr[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float mx = -INFINITY;
#pragma unroll
      for (int nt = 0; nt < NK / 8; ++nt)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          float& x = sc[4 * nt + 2 * h + e];
          if (interior) {
            x *= scale2;
          } else {
            const int64_t key = kb + nt * 8 + 2 * t + e;
            x = valid[h] && key >= lo[h] && key <= hi[h] && key <= khi ? x * scale2 : -INFINITY;
          }
          mx = fmaxf(mx, x);
        }
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m_run[h], mx);
      const float m_use = m_new == -INFINITY ? 0.0f : m_new;
      corr[h] = exp2f(m_run[h] - m_use);
      m_run[h] = m_new;
      l_run[h] *= corr[h];
#pragma unroll
      for (int nt = 0; nt < NK / 8; ++nt)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          float& x = sc[4 * nt + 2 * h + e];
          x = exp2f(x - m_use);
          l_run[h] += x;
        }
    }
    if (corr[0] != 1.0f || corr[1] != 1.0f) {  // the running max moved (rarely, once it has seen many keys)
#pragma unroll
      for (int i = 0; i < kGroupCols / 8; ++i) {
        o[4 * i] *= corr[0];
        o[4 * i + 1] *= corr[0];
        o[4 * i + 2] *= corr[1];
        o[4 * i + 3] *= corr[1];
      }
    }
    // O += P V over this warpgroup's 256 columns; P (1 or 2 terms) from registers, held until the MMAs are done.
    uint32_t pa[NK / 16][4], pl[Q2 ? NK / 16 : 1][4];
#pragma unroll
    for (int ks = 0; ks < NK / 16; ++ks) {
      const float* s8 = sc + 8 * ks;
      pa[ks][0] = pack_bf16(s8[0], s8[1]);
      pa[ks][1] = pack_bf16(s8[2], s8[3]);
      pa[ks][2] = pack_bf16(s8[4], s8[5]);
      pa[ks][3] = pack_bf16(s8[6], s8[7]);
      if constexpr (Q2) {
        pl[ks][0] = pack_residual(s8[0], s8[1]);
        pl[ks][1] = pack_residual(s8[2], s8[3]);
        pl[ks][2] = pack_residual(s8[4], s8[5]);
        pl[ks][3] = pack_residual(s8[6], s8[7]);
      }
    }
    wgmma_hold(o);
    wgmma_hold(pa);
    if constexpr (Q2) wgmma_hold(pl);
    wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < NK / 16; ++ks) {
      const uint64_t b = v_desc + stage_off + ks * (2 * 128 / 16);
      wgmma_rs_n256_tb(o, pa[ks], b, 1);
      if constexpr (Q2) wgmma_rs_n256_tb(o, pl[ks], b, 1);
    }
    wgmma_commit();
    wgmma_wait<0>();
    wgmma_hold(o);
    wgmma_hold(pa);
    if constexpr (Q2) wgmma_hold(pl);
  }

  // m_run is in log2 units; the merge works in natural ones.
  store_flash_rows<D, kGroupCols / 8>(p, f.split, o, cg * kGroupCols, m_run, l_run, valid, out_row, head, cg == 0,
                                      1.0f / kLog2e);
#endif
}

// The step's fresh keys and values -> bf16 (rounded to nearest even, as kv_store stores them), 8 per thread.
__global__ void convert_fresh_kv_kernel(const float* k, const float* v, uint16_t* k16, uint16_t* v16, int64_t n8) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n8) return;
  const float4* src[2] = {reinterpret_cast<const float4*>(k) + 2 * i, reinterpret_cast<const float4*>(v) + 2 * i};
  uint16_t* dst[2] = {k16 + 8 * i, v16 + 8 * i};
#pragma unroll
  for (int w = 0; w < 2; ++w) {
    const float4 a = src[w][0], b = src[w][1];
    *reinterpret_cast<uint4*>(dst[w]) =
        make_uint4(pack_bf16(a.x, a.y), pack_bf16(a.z, a.w), pack_bf16(b.x, b.y), pack_bf16(b.z, b.w));
  }
}

template <int D, bool Q2>
void launch(const AttentionParams& p, const uint16_t* fresh_k, const uint16_t* fresh_v, cudaStream_t stream) {
  constexpr int bytes = smem_bytes<D, Q2>();
  static_assert(bytes <= 227 * 1024, "wgmma attention: shared memory");
  UG_CUDA_CHECK(
      cudaFuncSetAttribute(wgmma_attention_kernel<D, Q2>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  launch_kernel("wgmma_attention_kernel", wgmma_attention_kernel<D, Q2>, unsigned(p.n_tiles * p.splits), kThreads,
                size_t(bytes), stream, p, fresh_k, fresh_v);
}

}  // namespace

bool wgmma_attention_supports(int64_t head_dim, int64_t group, AttentionMode mode) {
  if (head_dim != 256 && head_dim != 512) return false;
  if (mode != AttentionMode::Fast && mode != AttentionMode::Exact) return false;
  const int64_t rows = wgmma_tile_rows(head_dim);
  return group >= 1 && group <= rows && rows % group == 0 && wgmma_available();
}

int64_t wgmma_tile_rows(int64_t head_dim) { return head_dim == 512 ? rows_per_tile<512>() : rows_per_tile<256>(); }

void launch_wgmma_attention(const AttentionParams& p, uint16_t* fresh_kv, cudaStream_t stream) {
  const int64_t n = p.rows * p.n_kv_heads * p.head_dim;  // elements of k (and of v)
  uint16_t* fresh_k = fresh_kv;
  uint16_t* fresh_v = fresh_kv + n;
  const int64_t n8 = n / 8;
  launch_kernel("convert_fresh_kv_kernel", convert_fresh_kv_kernel, unsigned((n8 + 255) / 256), 256u, size_t(0), stream,
                p.k, p.v, fresh_k, fresh_v, n8);
  const bool q2 = p.mode == AttentionMode::Exact;
  if (p.head_dim == 256)
    q2 ? launch<256, true>(p, fresh_k, fresh_v, stream) : launch<256, false>(p, fresh_k, fresh_v, stream);
  else
    q2 ? launch<512, true>(p, fresh_k, fresh_v, stream) : launch<512, false>(p, fresh_k, fresh_v, stream);
}

}  // namespace ug::cuda
