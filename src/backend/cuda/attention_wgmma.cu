// Prefill attention on Hopper's warpgroup MMA (wgmma, sm_90a), for head dims 256 and 512 with a bf16 KV cache
// (modes Fast and Exact) and an fp8 one (ExactFp8Kv): the flash kernel of attention.cu (same tiles, key ranges,
// splits and partials) with S = Q Kᵀ and O += P V issued to the tensor cores by a whole warpgroup at a time instead
// of mma.sync per warp.
//
// Why: mma.sync per warp re-reads K and V fragments from shared memory for every 16 rows and is issue-bound on
// Hopper (62-83 TFLOP/s at the 12B's prefill shapes); wgmma reads a 64-row A and the whole B block from shared
// memory once per warpgroup.
//
// Warp-specialized (as FlashAttention-3): a block is three warpgroups. The producer streams K and V blocks of NK
// keys by cp.async into two stages and signals "full" mbarriers (mbarrier.cuh); it keeps 24 registers and gives
// the rest to the two consumers (setmaxnreg), which wait for a stage, compute, and release it on "empty"
// mbarriers. No block-wide barrier in the loop: the consumers drift apart (one's softmax under the other's MMAs)
// and issue no loads. Head dim 256: each consumer owns 64 tile rows (128 per block), all 256 output columns (128
// f32 accumulators per thread). Head dim 512: both own the same 64 rows and half the output columns each (the
// output does not fit one warpgroup's registers) and the scores (split_scores says how). Queries (two bf16 terms
// in Exact) are converted into shared memory once, by the consumers while the first loads are in flight; K runs
// one block ahead of V (the next block's scores and softmax overlap this block's P V); the step's fresh rows come
// from the bf16 copy convert_fresh_kv_kernel makes first. Shared-memory operands use wgmma's 128-byte swizzle
// (wgmma.cuh, sw128_offset). K is the K-major B of Q Kᵀ; V, stored the same way, the N-major (transposed) B of P V.
// fp8 cache: the producer copies the e4m3 bytes (the cache's, and the step's fresh rows rounded the same way) into a
// staging ring and widens each thread's own chunks into the bf16 operand (exact: every e4m3 value is a bf16); the
// consumers compute as in Exact with the scores scaled back by k_scale. The widening needs registers the producer
// otherwise gives away (40 instead of 24; the consumers keep 232) and 32 KiB of staging (at head dim 512 in place of
// the score exchange: both consumers compute all scores).
#include <cuda_bf16.h>

#include <string>
#include <type_traits>

#include "backend/cuda/attention_internal.cuh"
#include "backend/cuda/cp_async.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kv_fp8.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/mbarrier.cuh"
#include "backend/cuda/wgmma.cuh"

namespace ug::cuda {
namespace {

constexpr int kThreads = 384;          // a producer warpgroup and two consumer warpgroups
constexpr int kConsumers = 256;        // threads of the two consumer warpgroups
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
// The fp8 cache's staging takes the exchange's shared memory: both compute all of them there too.
template <int D, bool Q2, bool FP8>
__host__ __device__ constexpr bool split_scores() {
  return col_groups<D>() == 2 && Q2 && !FP8;
}
template <int D, bool Q2, bool FP8>
__host__ __device__ constexpr int exchange_bytes() {
  return split_scores<D, Q2, FP8>() ? kConsumers * (keys_per_block<D, Q2>() / 2) * 4 : 0;
}
// fp8 cache: the staging ring of e4m3 bytes (K and V of two blocks).
template <int D, bool Q2, bool FP8>
__host__ __device__ constexpr int staging_bytes() {
  return FP8 ? 4 * keys_per_block<D, Q2>() * D : 0;
}
// Queries, two stages of K and V, the score exchange double-buffered (by block parity), the fp8 staging, alignment.
template <int D, bool Q2, bool FP8>
__host__ __device__ constexpr int smem_bytes() {
  return (Q2 ? 2 : 1) * rows_per_tile<D>() * D * 2 + 2 * 2 * keys_per_block<D, Q2>() * D * 2 +
         2 * exchange_bytes<D, Q2, FP8>() + staging_bytes<D, Q2, FP8>() + 1024;
}

// Registers: the producer warpgroup needs few, the consumers' accumulators many (128 x 24 + 256 x 240 <= 64 K;
// fp8: 128 x 40 + 256 x 232).
template <bool FP8>
__host__ __device__ constexpr int producer_regs() {
  return FP8 ? 40 : 24;
}
template <bool FP8>
__host__ __device__ constexpr int consumer_regs() {
  return FP8 ? 232 : 240;
}

// The ring slot of slot index sl, which may have run past the end (ring 0: a linear cache, sl unused).
__device__ __forceinline__ int ring_slot(int sl, int ring) {
  if (ring > 0)
    while (sl >= ring) sl -= ring;
  return sl;
}

// The producer warpgroup with an fp8 cache: K of block b, then V of block b, as e4m3 bytes by cp.async into a
// staging ring of four items (item n = K of block n / 2 for even n, else its V; slot n % 4); two items later, once
// its copies have landed (wait_group 2), a thread widens the chunks it copied into the bf16 operand stage b % 2
// after the consumers released block b - 2. Chunks are the bf16 producer's: (key j0 + 8 q, 8 columns c0 + 16 u).
template <int D, int NK>
__device__ __forceinline__ void produce_fp8(const AttentionParams& p, const FlashTile& f, int64_t klo, int64_t khi,
                                            int64_t n_blocks, const uint16_t* fresh_k, const uint16_t* fresh_v,
                                            unsigned char* kv_s, unsigned char* staging, uint64_t* k_full,
                                            uint64_t* v_full, uint64_t* k_empty, uint64_t* v_empty) {
  constexpr int kQ = NK / 8, kU = D / 128, kKBytes = NK * D * 2;
  const AttentionSeq& s = f.s;
  const int pt = int(threadIdx.x), j0 = pt % 8, c0 = pt / 8;
  const int row_elems = int(p.n_kv_heads * D);
  const int64_t col0 = f.kvh * D + c0 * 8;
  const int64_t first = klo + j0;  // this thread's first key
  const auto* const zero_src = reinterpret_cast<const unsigned char*>(fresh_k);
  const int64_t fresh_at = (s.row0 - s.chunk_start + first) * row_elems + col0;
  const unsigned char* const fresh_rows[2] = {zero_src + fresh_at,
                                              reinterpret_cast<const unsigned char*>(fresh_v) + fresh_at};
  const unsigned char* const cache_rows[2] = {static_cast<const unsigned char*>(s.cache_k) + col0,
                                              static_cast<const unsigned char*>(s.cache_v) + col0};
  const int ring = int(s.ring_capacity);
  // Offsets r (key first + r): fresh from fresh_from on, past the range from past on; the ring slot of offset 0.
  const int fresh_from = int(max(min(s.chunk_start - first, int64_t(1) << 30), int64_t(-(1 << 30))));
  const int past = int(khi - first + 1);
  int slot = ring > 0 ? int(first % ring) : 0;  // slot of the current block's offset
  const uint32_t operand0 = smem_addr(kv_s) + uint32_t(sw128_offset<NK>(j0, c0));
  const uint32_t staged0 = smem_addr(staging) + uint32_t(j0 * D + c0 * 8);
  const auto staged = [&](int n, int q, int u) { return staged0 + uint32_t((n & 3) * NK * D + q * 8 * D + u * 128); };
  regs_release<producer_regs<true>()>();
  const int items = 2 * int(n_blocks);
  for (int n = 0; n < items + 2; ++n) {
    if (n < items) {
      const int b = n >> 1, kv = n & 1;
#pragma unroll
      for (int q = 0; q < kQ; ++q) {
        const int r = b * NK + 8 * q;
        const int sl = ring_slot(slot + 8 * q, ring);
        const unsigned char* row = r >= past         ? zero_src
                                   : r >= fresh_from ? fresh_rows[kv] + int64_t(r) * row_elems
                                                     : cache_rows[kv] + int64_t(ring > 0 ? sl : first + r) * row_elems;
#pragma unroll
        for (int u = 0; u < kU; ++u) cp_async8_zfill_at(staged(n, q, u), row + (r >= past ? 0 : 128 * u), r < past);
      }
      if (kv == 1 && ring > 0) slot = ring_slot(slot + NK, ring);
    }
    cp_async_commit();  // an empty group past the last item keeps the count uniform
    cp_async_wait<2>();
    if (n < 2) continue;
    const int m = n - 2, b = m >> 1, kv = m & 1, st = b & 1;
    if (b >= 2) mbar_wait(kv ? &v_empty[st] : &k_empty[st], uint32_t((b >> 1) & 1) ^ 1u);
    const uint32_t operand = operand0 + uint32_t(st * 2 * kKBytes + kv * kKBytes);
#pragma unroll
    for (int q = 0; q < kQ; ++q)
#pragma unroll
      for (int u = 0; u < kU; ++u) {
        const uint2 bytes = ld_shared_u32x2(staged(m, q, u));
        uint4 wide;
        e4m3x4_to_bf16(bytes.x, wide.x, wide.y);
        e4m3x4_to_bf16(bytes.y, wide.z, wide.w);
        st_shared_u32x4(operand + uint32_t(q * 1024 + 2 * u * (NK / 8) * 1024), wide);
      }
    fence_proxy_async_shared();  // the wgmma (async proxy) reads what these stores wrote
    mbar_arrive(kv ? &v_full[st] : &k_full[st]);
  }
}

// FP8: fresh_k / fresh_v hold e4m3 bytes (keys divided by k_scale), not bf16.
template <int D, bool Q2, bool FP8>
__global__ void __launch_bounds__(kThreads, 1)
    wgmma_attention_kernel(AttentionParams p, const uint16_t* fresh_k, const uint16_t* fresh_v) {
  static_assert(!FP8 || Q2, "the fp8 cache: two-term queries");
  pdl_launch_dependents();
  pdl_wait();
#if UG_WGMMA_ARCH
  constexpr int CG = col_groups<D>(), ROWS = rows_per_tile<D>(), NK = keys_per_block<D, Q2>();
  constexpr int kQBytes = ROWS * D * 2, kKBytes = NK * D * 2;
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  unsigned char* const smem = smem_raw + ((1024 - (__cvta_generic_to_shared(smem_raw) & 1023)) & 1023);
  unsigned char* const q_s = smem;                                       // [terms][ROWS / 64][64-row operand]
  unsigned char* const kv_s = smem + (Q2 ? 2 : 1) * kQBytes;             // [2 stages][K, V]
  float* const exchange = reinterpret_cast<float*>(kv_s + 4 * kKBytes);  // [2][exchange_bytes] (split scores)
  unsigned char* const staging = kv_s + 4 * kKBytes + 2 * exchange_bytes<D, Q2, FP8>();  // [4 items][NK keys][D] (fp8)
  // [stage]: K full, V full (producer -> consumers), K empty, V empty (consumers -> producer).
  __shared__ uint64_t k_full[2], v_full[2], k_empty[2], v_empty[2];

  const int wg = int(threadIdx.x) / 128;
  const FlashTile f = flash_tile(p);
  const AttentionSeq& s = f.s;
  const int64_t kvh = f.kvh, valid_rows = f.valid_rows, Hkv = p.n_kv_heads;
  if (threadIdx.x == 0) {
    for (int st = 0; st < 2; ++st) {
      mbar_init(&k_full[st], 128);  // one cp.async-tracked arrival per producer thread
      mbar_init(&v_full[st], 128);
      mbar_init(&k_empty[st], kConsumers);  // one arrival per consumer thread
      mbar_init(&v_empty[st], kConsumers);
    }
    mbar_init_fence();
  }
  int64_t klo = 0, khi = -1;
  flash_keys(p, f, NK, klo, khi);  // its __syncthreads also publishes the barriers' initialisation
  const int64_t n_blocks = klo <= khi ? (khi - klo) / NK + 1 : 0;
  auto block_start = [&](int64_t b) { return klo + b * NK; };
  auto k_block = [&](int64_t b) { return kv_s + (b & 1) * 2 * kKBytes; };
  auto v_block = [&](int64_t b) { return kv_s + (b & 1) * 2 * kKBytes + kKBytes; };

  if constexpr (FP8) {
    if (wg == 0) {
      produce_fp8<D, NK>(p, f, klo, khi, n_blocks, fresh_k, fresh_v, kv_s, staging, k_full, v_full, k_empty, v_empty);
      return;
    }
  } else if (wg == 0) {
    // ---- Producer: K of block b, then V of block b, each into stage b % 2 once the consumers released it.
    // Chunk (key j0 + 8 q, 8-column chunk c0 + 16 u) of a block: 8 threads per core-matrix row group. Positions
    // are 32-bit offsets from this thread's first key klo + j0 and the row pointers are set up before the
    // registers are given back (24 per thread leave no room for 64-bit bookkeeping).
    constexpr int kQ = NK / 8, kU = D / 128;
    const int pt = int(threadIdx.x), j0 = pt % 8, c0 = pt / 8;
    const int row_elems = int(Hkv * D);
    const int64_t col0 = kvh * D + c0 * 8;
    const int64_t first = klo + j0;  // this thread's first key
    const uint16_t* const fresh_rows[2] = {fresh_k + (s.row0 - s.chunk_start + first) * row_elems + col0,
                                           fresh_v + (s.row0 - s.chunk_start + first) * row_elems + col0};
    const uint16_t* const cache_rows[2] = {static_cast<const uint16_t*>(s.cache_k) + col0,
                                           static_cast<const uint16_t*>(s.cache_v) + col0};
    const int ring = int(s.ring_capacity);
    // Offsets r (key first + r): fresh from fresh_from on, past the range from past on; the ring slot of offset 0.
    const int fresh_from = int(max(min(s.chunk_start - first, int64_t(1) << 30), int64_t(-(1 << 30))));
    const int past = int(khi - first + 1);
    int slot = ring > 0 ? int(first % ring) : 0;  // slot of the current block's offset (kept for the next block)
    const uint32_t smem0 = smem_addr(kv_s) + uint32_t(sw128_offset<NK>(j0, c0));
    const int blocks = int(n_blocks);
    const uint16_t* const zero_src = fresh_k;  // a valid address for zero-filled chunks
    regs_release<producer_regs<FP8>()>();
    auto load_block = [&](int b, int kv) {  // kv: 0 = K, 1 = V
      const uint32_t dst = smem0 + uint32_t((b & 1) * 2 * kKBytes + kv * kKBytes);
#pragma unroll
      for (int q = 0; q < kQ; ++q) {
        const int r = b * NK + 8 * q;
        const int sl = ring_slot(slot + 8 * q, ring);
        const uint16_t* row = r >= past         ? zero_src
                              : r >= fresh_from ? fresh_rows[kv] + int64_t(r) * row_elems
                                                : cache_rows[kv] + int64_t(ring > 0 ? sl : first + r) * row_elems;
#pragma unroll
        for (int u = 0; u < kU; ++u)
          cp_async16_zfill_at(dst + uint32_t(q * 1024 + 2 * u * (NK / 8) * 1024), row + (r >= past ? 0 : 128 * u),
                              r < past);
      }
    };
    for (int b = 0; b < blocks; ++b) {
      const int st = b & 1;
      const uint32_t parity = uint32_t((b >> 1) & 1) ^ 1u;  // the consumers' release of block b - 2
      if (b >= 2) mbar_wait(&k_empty[st], parity);
      load_block(b, 0);
      cp_async_mbar_arrive(&k_full[st]);
      if (b >= 2) mbar_wait(&v_empty[st], parity);
      load_block(b, 1);
      cp_async_mbar_arrive(&v_full[st]);
      if (ring > 0) slot = ring_slot(slot + NK, ring);
    }
    cp_async_wait_all();
    return;
  }

  // ---- Consumers: warpgroups 1 and 2, each over its row group (d 256) or column group (d 512).
  regs_claim<consumer_regs<FP8>()>();
  const int ci = wg - 1, ct = int(threadIdx.x) - 128;  // consumer index, thread among the 256 consumers
  const int warp = (ct % 128) / 32, lane = ct % 32;
  const int g = lane / 4, t = lane % 4;
  const int rg = CG == 1 ? ci : 0, cg = CG == 1 ? 0 : ci;
  constexpr int kConsumerBarrier = 1;  // named barrier of the 256 consumer threads

  // Queries -> bf16 (hi, lo) operands, by the consumers while the producer's first loads are in flight.
  for (int i = ct; i < ROWS * (D / 8); i += kConsumers) {
    const int m = (i / (8 * (D / 8))) * 8 + i % 8, c = (i / 8) % (D / 8);
    uint4 qhi, qlo;
    query_chunk<D>(p, f, m, c * 8, qhi, qlo);
    unsigned char* dst = q_s + (m / 64) * (64 * D * 2) + sw128_offset<64>(m % 64, c);
    *reinterpret_cast<uint4*>(dst) = qhi;
    if constexpr (Q2) *reinterpret_cast<uint4*>(dst + kQBytes) = qlo;
  }
  fence_proxy_async_shared();
  named_barrier(kConsumerBarrier, kConsumers);

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
  const bool group_active = rg * 64 < valid_rows;

  float o[kGroupCols / 2];
#pragma unroll
  for (int i = 0; i < kGroupCols / 2; ++i) o[i] = 0.0f;
  constexpr float kLog2e = 1.4426950408889634f;
  // The fp8 cache's keys are stored divided by k_scale: the scores are scaled back (exactly: a power of two).
  const float scale2 = p.scale * (FP8 ? p.k_scale : 1.0f) * kLog2e;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};

  const uint64_t q_desc = smem_desc_sw128(q_s + rg * (64 * D * 2), 16, 1024);
  const uint64_t k_desc = smem_desc_sw128(kv_s, 16, 1024);
  const uint64_t v_desc =
      smem_desc_sw128(kv_s + kKBytes + cg * (kGroupCols / 64) * (NK / 8) * 1024, (NK / 8) * 1024, 1024);
  constexpr uint64_t kQTerm = kQBytes / 16, kStage = 2 * kKBytes / 16;
  auto q_step = [](int kk) { return uint64_t(((kk / 4) * 8 * 1024 + (kk % 4) * 32) / 16); };
  auto k_step = [](int kk) { return uint64_t(((kk / 4) * (NK / 8) * 1024 + (kk % 4) * 32) / 16); };
  const int lo_all = max(lo[0], lo[1]), hi_all = min(hi[0], hi[1]);

  using PFrag = uint32_t[NK / 16][4];
  using LFrag = uint32_t[Q2 ? NK / 16 : 1][4];
  constexpr bool kSplit = split_scores<D, Q2, FP8>();
  // Waits for K of block b, then issues its scores (one wgmma group).
  auto issue_scores = [&](float(&sc)[NK / 2], int64_t b) {
    mbar_wait(&k_full[b & 1], uint32_t((b >> 1) & 1));
    fence_proxy_async_shared();
#pragma unroll
    for (int i = 0; i < NK / 2; ++i) sc[i] = 0.0f;
    wgmma_hold(sc);
    wgmma_fence();
    constexpr int kSteps = kSplit ? D / 16 / 2 : D / 16;
    const int kk0 = kSplit ? cg * kSteps : 0;
    const uint64_t stage_off = (b & 1) * kStage;
#pragma unroll
    for (int kk = kk0; kk < kk0 + kSteps; ++kk) {
      const uint64_t kd = k_desc + stage_off + k_step(kk);
      wgmma_ss_acc<NK>(sc, q_desc + q_step(kk), kd);
      if constexpr (Q2) wgmma_ss_acc<NK>(sc, q_desc + kQTerm + q_step(kk), kd);
    }
    wgmma_commit();
  };
  auto softmax = [&](float(&sc)[NK / 2], int64_t b, PFrag& pa, LFrag& pl, float(&corr)[2]) {
    if constexpr (kSplit) {
      // Double-buffered by block parity: the other consumer read buffer b % 2 (block b - 2) before it arrived at
      // the exchange barrier of block b - 1, which this consumer has passed.
      const int lane_in_group = ct % 128;
      float* buf = exchange + (b & 1) * (exchange_bytes<D, Q2, FP8>() / 4);
      float* mine = buf + cg * 128 * (NK / 2) + lane_in_group;
      const float* other = buf + (1 - cg) * 128 * (NK / 2) + lane_in_group;
#pragma unroll
      for (int i = 0; i < NK / 2; ++i) mine[i * 128] = sc[i];
      named_barrier(kConsumerBarrier, kConsumers);
#pragma unroll
      for (int i = 0; i < NK / 2; ++i) sc[i] += other[i * 128];
    }
    const int kb_rel = int(block_start(b) - klo);
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

  // Inactive warpgroups (rows past the tile) still wait and release every stage: the barriers count them.
  PFrag pa0, pa1;
  LFrag pl0, pl1;
  if (n_blocks > 0) {
    float sc[NK / 2], corr[2];
    if (group_active) {
      issue_scores(sc, 0);
      wgmma_wait<0>();
      wgmma_hold(sc);
    } else {
      mbar_wait(&k_full[0], 0);
    }
    mbar_arrive(&k_empty[0]);
    if (group_active) softmax(sc, 0, pa0, pl0, corr);  // the accumulators are still zero: no correction
  }
  auto step = [&](auto more, int64_t b, PFrag& pa, LFrag& pl, PFrag& pa_next, LFrag& pl_next) {
    constexpr bool kMore = decltype(more)::value;
    if (!group_active) {  // only with one column group (CG == 1): no exchange to take part in
      if constexpr (kMore) {
        mbar_wait(&k_full[(b + 1) & 1], uint32_t(((b + 1) >> 1) & 1));
        mbar_arrive(&k_empty[(b + 1) & 1]);
      }
      mbar_wait(&v_full[b & 1], uint32_t((b >> 1) & 1));
      mbar_arrive(&v_empty[b & 1]);
      return;
    }
    float sc[NK / 2];
    if constexpr (kMore) issue_scores(sc, b + 1);
    mbar_wait(&v_full[b & 1], uint32_t((b >> 1) & 1));
    fence_proxy_async_shared();
    wgmma_hold(o);
    wgmma_hold(pa);
    if constexpr (Q2) wgmma_hold(pl);
    wgmma_fence();
    const uint64_t v_off = (b & 1) * kStage;
#pragma unroll
    for (int ks = 0; ks < NK / 16; ++ks) {
      const uint64_t vd = v_desc + v_off + ks * (2 * 1024 / 16);
      wgmma_rs_n256_tb(o, pa[ks], vd, 1);
      if constexpr (Q2) wgmma_rs_n256_tb(o, pl[ks], vd, 1);
    }
    wgmma_commit();
    float corr[2];
    if constexpr (kMore) {
      wgmma_wait<1>();
      wgmma_hold(sc);
      mbar_arrive(&k_empty[(b + 1) & 1]);
      softmax(sc, b + 1, pa_next, pl_next, corr);
    }
    wgmma_wait<0>();
    wgmma_hold(o);
    wgmma_hold(pa);
    if constexpr (Q2) wgmma_hold(pl);
    mbar_arrive(&v_empty[b & 1]);
    if constexpr (kMore) {
      if (corr[0] != 1.0f || corr[1] != 1.0f) {
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

  int64_t out_row[2] = {0, 0}, head[2] = {0, 0};
#pragma unroll
  for (int h = 0; h < 2; ++h) tile_row_head(p, f, tile_row0 + 8 * h, out_row[h], head[h]);
  // store_flash_rows reads threadIdx.x % 4 for the lane's column pair: unchanged by the 128-thread offset.
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

// The same for an fp8 cache: e4m3 bytes as kv_store stores them (keys divided by k_scale), 8 per thread.
__global__ void convert_fresh_kv_fp8_kernel(const float* k, const float* v, uint8_t* k8, uint8_t* v8, int64_t n8,
                                            float inv_k_scale) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n8) return;
  const float* src[2] = {k + 8 * i, v + 8 * i};
  uint8_t* dst[2] = {k8 + 8 * i, v8 + 8 * i};
  const float inv[2] = {inv_k_scale, 1.0f};
#pragma unroll
  for (int w = 0; w < 2; ++w) {
    const float4 a = reinterpret_cast<const float4*>(src[w])[0], b = reinterpret_cast<const float4*>(src[w])[1];
    const float lo[4] = {a.x, a.y, a.z, a.w}, hi[4] = {b.x, b.y, b.z, b.w};
    *reinterpret_cast<uint2*>(dst[w]) = make_uint2(e4m3x4_of(lo, inv[w]), e4m3x4_of(hi, inv[w]));
  }
}

template <int D, bool Q2, bool FP8 = false>
void launch(const AttentionParams& p, const uint16_t* fresh_k, const uint16_t* fresh_v, cudaStream_t stream) {
  constexpr int bytes = smem_bytes<D, Q2, FP8>();
  static_assert(bytes <= 227 * 1024, "wgmma attention: shared memory");
  UG_CUDA_CHECK(
      cudaFuncSetAttribute(wgmma_attention_kernel<D, Q2, FP8>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  launch_kernel("wgmma_attention_kernel", wgmma_attention_kernel<D, Q2, FP8>, unsigned(p.n_tiles * p.splits), kThreads,
                size_t(bytes), stream, p, fresh_k, fresh_v);
}

}  // namespace

bool wgmma_attention_supports(int64_t head_dim, int64_t group, AttentionMode mode) {
  if (head_dim != 256 && head_dim != 512) return false;
  if (mode != AttentionMode::Fast && mode != AttentionMode::Exact && mode != AttentionMode::ExactFp8Kv) return false;
  const int64_t rows = wgmma_tile_rows(head_dim);
  return group >= 1 && group <= rows && rows % group == 0 && wgmma_available();
}

int64_t wgmma_tile_rows(int64_t head_dim) { return head_dim == 512 ? rows_per_tile<512>() : rows_per_tile<256>(); }

void launch_wgmma_attention(const AttentionParams& p, uint16_t* fresh_kv, cudaStream_t stream) {
  const int64_t n = p.rows * p.n_kv_heads * p.head_dim;  // elements of k (and of v)
  uint16_t* fresh_k = fresh_kv;
  uint16_t* fresh_v = fresh_kv + n;
  const int64_t n8 = n / 8;
  if (p.mode == AttentionMode::ExactFp8Kv) {  // e4m3 bytes: half the room
    auto* k8 = reinterpret_cast<uint8_t*>(fresh_kv);
    launch_kernel("convert_fresh_kv_fp8_kernel", convert_fresh_kv_fp8_kernel, unsigned((n8 + 255) / 256), 256u,
                  size_t(0), stream, p.k, p.v, k8, k8 + n, n8, 1.0f / p.k_scale);
    const auto* k8_16 = reinterpret_cast<const uint16_t*>(k8);
    const auto* v8_16 = reinterpret_cast<const uint16_t*>(k8 + n);
    if (p.head_dim == 256)
      launch<256, true, true>(p, k8_16, v8_16, stream);
    else
      launch<512, true, true>(p, k8_16, v8_16, stream);
    return;
  }
  launch_kernel("convert_fresh_kv_kernel", convert_fresh_kv_kernel, unsigned((n8 + 255) / 256), 256u, size_t(0), stream,
                p.k, p.v, fresh_k, fresh_v, n8);
  const bool q2 = p.mode == AttentionMode::Exact;
  if (p.head_dim == 256)
    q2 ? launch<256, true>(p, fresh_k, fresh_v, stream) : launch<256, false>(p, fresh_k, fresh_v, stream);
  else
    q2 ? launch<512, true>(p, fresh_k, fresh_v, stream) : launch<512, false>(p, fresh_k, fresh_v, stream);
}

}  // namespace ug::cuda
