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
// double-buffered by cp.async (K one block ahead of V: the next block's scores and softmax overlap this block's
// P V), the step's fresh rows from the bf16 copy convert_fresh_kv_kernel makes first. Shared-memory operands use
// wgmma's 128-byte swizzle layout (wgmma.cuh, sw128_offset). K is the K-major B of Q Kᵀ; V, stored the same way,
// the N-major (transposed) B of P V.
#include <cuda_bf16.h>

#include <string>
#include <type_traits>

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
  return (Q2 ? 2 : 1) * rows_per_tile<D>() * D * 2 + 2 * 2 * keys_per_block<D, Q2>() * D * 2 + exchange_bytes<D, Q2>() +
         1024;  // alignment
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
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  // The swizzled operands' atoms need 1024-byte alignment (smem_bytes leaves room for rounding up).
  unsigned char* const smem = smem_raw + ((1024 - (__cvta_generic_to_shared(smem_raw) & 1023)) & 1023);
  unsigned char* const q_s = smem;                                       // [terms][ROWS / 64][64-row operand]
  unsigned char* const kv_s = smem + (Q2 ? 2 : 1) * kQBytes;             // [2 stages][K, V]
  float* const exchange = reinterpret_cast<float*>(kv_s + 4 * kKBytes);  // exchange_bytes (split scores)

  const int wg = int(threadIdx.x) / 128, warp = (int(threadIdx.x) % 128) / 32, lane = int(threadIdx.x) % 32;
  const int g = lane / 4, t = lane % 4;
  const int rg = CG == 1 ? wg : 0, cg = CG == 1 ? 0 : wg;  // this warpgroup's 64 rows and 256 columns
  const FlashTile f = flash_tile(p);
  const AttentionSeq& s = f.s;
  const int64_t kvh = f.kvh, valid_rows = f.valid_rows, Hkv = p.n_kv_heads;

  int64_t klo = 0, khi = -1;
  flash_keys(p, f, NK, klo, khi);

  // This thread's two rows (g and g + 8 of its warp's 16) and their visible keys as 32-bit offsets from klo
  // (registers are what the kernel is short of): [lo, hi] cut to [-1, khi - klo]; a row past the tile sees none.
  const int tile_row0 = rg * 64 + warp * 16 + g;
  bool valid[2];
  int lo[2], hi[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    int64_t out_row = 0, head = 0, row_lo = 0, row_hi = -1;
    valid[h] = flash_row(p, f, tile_row0 + 8 * h, out_row, head, row_lo, row_hi);
    lo[h] = valid[h] ? int(max(row_lo - klo, int64_t(-1))) : 1;
    hi[h] = valid[h] ? int(max(min(row_hi, khi) - klo, int64_t(-1))) : 0;
  }
  const bool group_active = rg * 64 < valid_rows;  // uniform over the warpgroup (wgmma needs all of it)

  float o[kGroupCols / 2];
#pragma unroll
  for (int i = 0; i < kGroupCols / 2; ++i) o[i] = 0.0f;
  // Scores in log2 units (exp2 is one instruction): m_run too; partials convert back.
  constexpr float kLog2e = 1.4426950408889634f;
  const float scale2 = p.scale * kLog2e;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};

  // This thread's share of a K / V block: chunk r of it is key j0 + 8 (r / kPerRow), 8-column chunk c0 + 32 (r %
  // kPerRow) (eight threads write one 16-byte chunk of 8 keys: a column of an atom), so every offset is a constant
  // from the thread's first one.
  constexpr int kChunks = NK * (D / 8) / kThreads, kPerRow = (D / 8) / 32;
  static_assert(kChunks * kThreads == NK * (D / 8) && kThreads == 256, "a block's chunks divide among the threads");
  const int j0 = int(threadIdx.x) % 8, c0 = int(threadIdx.x) / 8;
  const int smem0 = sw128_offset<NK>(j0, c0);
  const int64_t col0 = kvh * D + c0 * 8;  // element offset of the chunk within a key's row (kv head, columns)
  const int64_t row_elems = Hkv * D;
  const int64_t ring = s.ring_capacity;
  const uint16_t* fresh_k0 = fresh_k + (s.row0 - s.chunk_start) * row_elems;  // + pos x row_elems: key pos
  const uint16_t* fresh_v0 = fresh_v + (s.row0 - s.chunk_start) * row_elems;
  // Loads K (or V) of keys kb .. kb + NK - 1 into the block at `dst` (rows past the range are zeros). Block b's K
  // and V live in stage b % 2, but K runs one block ahead of V (the scores of the next block are computed while
  // P V of this one runs), so they are loaded separately.
  auto load_block = [&](int64_t kb, unsigned char* dst, bool values) {
    const uint16_t* fresh = values ? fresh_v0 : fresh_k0;
    const uint16_t* cache = static_cast<const uint16_t*>(values ? s.cache_v : s.cache_k);
    // The ring slot of key kb + j0 (one division per block, not one per chunk: 64-bit divisions are slow).
    int64_t slot0 = kb + j0;
    if (ring > 0) slot0 %= ring;
#pragma unroll
    for (int r = 0; r < kChunks; ++r) {
      const int64_t pos = kb + j0 + 8 * (r / kPerRow);
      const int64_t col = col0 + 32 * 8 * (r % kPerRow);
      unsigned char* d = dst + smem0 + (4 * (r % kPerRow) * (NK / 8) + r / kPerRow) * 1024;
      if (pos > khi) {
        *reinterpret_cast<uint4*>(d) = make_uint4(0, 0, 0, 0);
      } else if (pos >= s.chunk_start) {
        cp_async16(d, fresh + pos * row_elems + col);
      } else {
        int64_t slot = slot0 + 8 * (r / kPerRow);
        if (ring > 0)
          while (slot >= ring) slot -= ring;
        cp_async16(d, cache + slot * row_elems + col);
      }
    }
  };
  auto k_block = [&](int64_t b) { return kv_s + (b & 1) * 2 * kKBytes; };
  auto v_block = [&](int64_t b) { return kv_s + (b & 1) * 2 * kKBytes + kKBytes; };
  // Descriptors of k-step 0 (stage 0); a step or stage adds its byte offset / 16 (addresses stay below 2^18, so
  // the 14-bit start field never carries). Q and K are K-major, V N-major (its atoms along d are NK / 8 x 1024
  // bytes apart); all three use the 128-byte swizzle.
  const uint64_t q_desc = smem_desc_sw128(q_s + rg * (64 * D * 2), 16, 1024);
  const uint64_t k_desc = smem_desc_sw128(kv_s, 16, 1024);
  const uint64_t v_desc =
      smem_desc_sw128(kv_s + kKBytes + cg * (kGroupCols / 64) * (NK / 8) * 1024, (NK / 8) * 1024, 1024);
  constexpr uint64_t kQTerm = kQBytes / 16, kStage = 2 * kKBytes / 16;
  const int lo_all = max(lo[0], lo[1]), hi_all = min(hi[0], hi[1]);

  using PFrag = uint32_t[NK / 16][4];           // P as wgmma A fragments (bf16 pairs)
  using LFrag = uint32_t[Q2 ? NK / 16 : 1][4];  // its rounding residuals (two-term P, Exact)
  // S = Q Kᵀ of block b (64 rows x NK keys, D / 16 k-steps, two per step with two-term queries), issued as one
  // wgmma group; the caller waits for it.
  constexpr bool kSplit = split_scores<D, Q2>();
  auto issue_scores = [&](float(&sc)[NK / 2], int64_t b) {
#pragma unroll
    for (int i = 0; i < NK / 2; ++i) sc[i] = 0.0f;
    wgmma_hold(sc);
    wgmma_fence();
    // Split scores: each warpgroup sums its own half of d (cg), then adds the other's through shared memory.
    constexpr int kSteps = kSplit ? D / 16 / 2 : D / 16;
    const int kk0 = kSplit ? cg * kSteps : 0;
    const uint64_t stage_off = (b & 1) * kStage;
#pragma unroll
    for (int kk = kk0; kk < kk0 + kSteps; ++kk) {
      const uint64_t kd = k_desc + stage_off + sw128_k_step<NK>(kk);
      scores_mma<NK>(sc, q_desc + sw128_k_step<64>(kk), kd);
      if constexpr (Q2) scores_mma<NK>(sc, q_desc + kQTerm + sw128_k_step<64>(kk), kd);
    }
    wgmma_commit();
  };
  // Finished scores of the block at kb -> P (bf16 terms in pa / pl) and the running max / sum; corr is what the
  // accumulators must be scaled by before P V is added.
  auto softmax = [&](float(&sc)[NK / 2], int64_t kb, PFrag& pa, LFrag& pl, float(&corr)[2]) {
    if constexpr (kSplit) {
      // [warpgroup][score i][thread]: a warp's 32 lanes write 32 consecutive floats. Both warpgroups end with
      // own + other = the same sums (addition commutes), so their softmax and P are identical. The next write
      // comes after the next block's __syncthreads, when both have read.
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
    const int kb_rel = int(kb - klo);
    const bool interior = kb_rel >= lo_all && kb_rel + NK - 1 <= hi_all;
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
            const int key = kb_rel + nt * 8 + 2 * t + e;
            x = key >= lo[h] && key <= hi[h] ? x * scale2 : -INFINITY;
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
  };

  // Pipeline: iteration b issues S of block b + 1, then O += P V of block b, and computes block b + 1's softmax
  // while P V runs on the tensor cores (scores first: wgmma groups complete in order). One barrier per block: it
  // publishes K of b + 1 and V of b, and frees K of b and V of b - 1 for the loads of K of b + 2 and V of b + 1.
  const int64_t n_blocks = klo <= khi ? (khi - klo) / NK + 1 : 0;
  auto block_start = [&](int64_t b) { return klo + b * NK; };
  if (n_blocks > 0) {
    load_block(klo, k_block(0), false);
    load_block(klo, v_block(0), true);
    cp_async_commit();
  }
  if (n_blocks > 1) load_block(block_start(1), k_block(1), false);
  cp_async_commit();  // possibly empty: keeps the wait counts uniform
  // Queries -> bf16 (hi, lo) operands while those loads are in flight (measured: converting them first, the
  // loads' latency was ~10% of the kernel's stall samples; 8,192 rows d 256 fast 698 -> 605 µs); the prologue's
  // barrier publishes them. Rows past the tile are zero; eight threads write one row group's 16-byte chunk c.
  for (int i = int(threadIdx.x); i < ROWS * (D / 8); i += kThreads) {
    const int m = (i / (8 * (D / 8))) * 8 + i % 8, c = (i / 8) % (D / 8);
    uint4 qhi, qlo;
    query_chunk<D>(p, f, m, c * 8, qhi, qlo);
    unsigned char* dst = q_s + (m / 64) * (64 * D * 2) + sw128_offset<64>(m % 64, c);
    *reinterpret_cast<uint4*>(dst) = qhi;
    if constexpr (Q2) *reinterpret_cast<uint4*>(dst + kQBytes) = qlo;
  }
  // P of the block whose P V is next, and of the one after (swapped by unrolling two blocks per loop trip: a
  // register copy would let ptxas reuse the registers P V is still reading and serialize the MMAs).
  PFrag pa0, pa1;
  LFrag pl0, pl1;
  if (n_blocks > 0) {
    cp_async_wait_one();
    fence_proxy_async_shared();
    __syncthreads();  // K and V of block 0, the queries
    if (group_active) {
      float sc[NK / 2], corr[2];
      issue_scores(sc, 0);
      wgmma_wait<0>();
      wgmma_hold(sc);
      softmax(sc, klo, pa0, pl0, corr);  // the accumulators are still zero: no correction
    }
  }
  // Block b: P V with (pa, pl); when `more`, also block b + 1's scores and softmax into (pa_next, pl_next).
  auto step = [&](auto more, int64_t b, PFrag& pa, LFrag& pl, PFrag& pa_next, LFrag& pl_next) {
    constexpr bool kMore = decltype(more)::value;
    cp_async_wait_all();
    fence_proxy_async_shared();
    __syncthreads();
    if (b + 2 < n_blocks) load_block(block_start(b + 2), k_block(b + 2), false);
    if (kMore) load_block(block_start(b + 1), v_block(b + 1), true);
    cp_async_commit();
    if (!group_active) return;
    float sc[NK / 2];
    if constexpr (kMore) issue_scores(sc, b + 1);
    // O += P V over this warpgroup's 256 columns; P (1 or 2 terms) from registers, held until the MMAs are done.
    wgmma_hold(o);
    wgmma_hold(pa);
    if constexpr (Q2) wgmma_hold(pl);
    wgmma_fence();
    const uint64_t v_off = (b & 1) * kStage;
#pragma unroll
    for (int ks = 0; ks < NK / 16; ++ks) {
      const uint64_t vd = v_desc + v_off + ks * (2 * 1024 / 16);  // 16 keys: two 8-row groups
      wgmma_rs_n256_tb(o, pa[ks], vd, 1);
      if constexpr (Q2) wgmma_rs_n256_tb(o, pl[ks], vd, 1);
    }
    wgmma_commit();
    float corr[2];
    if constexpr (kMore) {
      wgmma_wait<1>();
      wgmma_hold(sc);
      softmax(sc, block_start(b + 1), pa_next, pl_next, corr);
    }
    wgmma_wait<0>();
    wgmma_hold(o);
    wgmma_hold(pa);
    if constexpr (Q2) wgmma_hold(pl);
    if constexpr (kMore) {
      if (corr[0] != 1.0f || corr[1] != 1.0f) {  // the running max moved (rarely, once it has seen many keys)
#pragma unroll
        for (int i = 0; i < kGroupCols / 8; ++i) {
          o[4 * i] *= corr[0];
          o[4 * i + 1] *= corr[0];
          o[4 * i + 2] *= corr[1];
          o[4 * i + 3] *= corr[1];
        }
      }
    }
  };
  int64_t b = 0;
  for (; b + 2 < n_blocks; b += 2) {
    step(std::true_type{}, b, pa0, pl0, pa1, pl1);
    step(std::true_type{}, b + 1, pa1, pl1, pa0, pl0);
  }
  if (b + 1 < n_blocks) {
    step(std::true_type{}, b, pa0, pl0, pa1, pl1);
    step(std::false_type{}, b + 1, pa1, pl1, pa0, pl0);
  } else if (b < n_blocks) {
    step(std::false_type{}, b, pa0, pl0, pa1, pl1);
  }

  // m_run is in log2 units; the merge works in natural ones.
  int64_t out_row[2] = {0, 0}, head[2] = {0, 0};
#pragma unroll
  for (int h = 0; h < 2; ++h) tile_row_head(p, f, tile_row0 + 8 * h, out_row[h], head[h]);
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
