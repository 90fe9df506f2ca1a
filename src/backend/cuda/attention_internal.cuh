// Device helpers and kernel entry points shared by the attention kernels (attention.cu: the tensor-core flash
// kernel and the split merge; attention_decode.cu: one-row decode on CUDA cores; attention_wgmma.cu: prefill on
// Hopper's warpgroup MMA). Included by .cu files only.
#pragma once

#include <cuda_bf16.h>

#include "backend/cuda/attention.h"
#include "backend/cuda/mma.cuh"

namespace ug::cuda {

// Visible keys [lo, hi] of the query at row `row` (position qpos) of sequence s.
__device__ __forceinline__ void key_range(const AttentionParams& p, const AttentionSeq& s, int64_t row, int64_t& lo,
                                          int64_t& hi) {
  const int64_t qpos = s.chunk_start + (row - s.row0);
  lo = p.window > 0 ? max(int64_t(0), qpos - p.window + 1) : 0;
  hi = qpos;
  if (p.window > 0 && p.block_last && p.block_last[row] >= 0) hi = s.chunk_start + (p.block_last[row] - s.row0);
}

// Split `split` of `splits` of the keys [lo, hi]: ranges of whole blocks of `block_keys` (the last one shorter),
// [klo, khi] empty (khi < klo) when the split starts past hi.
__device__ __forceinline__ void split_keys(int64_t lo, int64_t hi, int64_t splits, int64_t split, int64_t block_keys,
                                           int64_t& klo, int64_t& khi) {
  const int64_t per = ((hi - lo + 1 + splits - 1) / splits + block_keys - 1) / block_keys * block_keys;
  klo = lo + split * per;
  khi = min(hi, klo + per - 1);
}

// split_keys for the decode kernels' one-row tiles (fewer than 2^31 keys): the divisions in 32 bits, since a 64-bit
// one is a ~70-instruction call and at batch 1 the prologue is a good part of a decode block's short life.
__device__ __forceinline__ void split_keys32(int64_t lo, int64_t hi, uint32_t splits, uint32_t split,
                                             uint32_t block_keys, int64_t& klo, int64_t& khi) {
  const uint32_t keys = uint32_t(max(hi - lo + 1, int64_t(0)));
  const uint32_t per = ((keys + splits - 1) / splits + block_keys - 1) / block_keys * block_keys;
  klo = lo + int64_t(split) * per;
  khi = min(hi, klo + per - 1);
}

// A block of the flash kernels (mma.sync and wgmma): its tile (p.tiles: sequence, first query, kv head) and key
// split.
struct FlashTile {
  AttentionSeq s;
  int64_t split = 0, first_q = 0, kvh = 0;
  int64_t nq = 0;          // queries of the tile
  int64_t valid_rows = 0;  // nq x the GQA group: tile row m is query first_q + m / G, head kvh * G + m % G
};

__device__ __forceinline__ FlashTile flash_tile(const AttentionParams& p) {
  FlashTile f;
  const int64_t tile = blockIdx.x / p.splits;
  f.split = blockIdx.x % p.splits;
  f.s = p.seqs[p.tiles[3 * tile]];
  f.first_q = p.tiles[3 * tile + 1];
  f.kvh = p.tiles[3 * tile + 2];
  f.nq = min(p.queries_per_tile, f.s.n_rows - f.first_q);
  f.valid_rows = f.nq * (p.n_heads / p.n_kv_heads);
  return f;
}

// This block's keys [klo, khi]: the union of its rows' ranges (the first query's lo, the largest hi) cut into
// p.splits ranges of whole blocks of `block_keys`. Thread 0 finds the union; the __syncthreads that shares it also
// publishes the block's earlier shared-memory writes.
__device__ __forceinline__ void flash_keys(const AttentionParams& p, const FlashTile& f, int64_t block_keys,
                                           int64_t& klo, int64_t& khi) {
  __shared__ int64_t tile_keys[2];
  if (threadIdx.x == 0) {
    int64_t lo0 = 0, hi0 = 0, lo = 0, hi = 0;
    key_range(p, f.s, f.s.row0 + f.first_q, lo0, hi0);
    for (int64_t qi = 1; qi < f.nq; ++qi) {
      key_range(p, f.s, f.s.row0 + f.first_q + qi, lo, hi);
      hi0 = max(hi0, hi);
    }
    tile_keys[0] = lo0;
    tile_keys[1] = hi0;
  }
  __syncthreads();
  split_keys(tile_keys[0], tile_keys[1], p.splits, f.split, block_keys, klo, khi);
}

// Tile row m's query row (in q and out) and head.
__device__ __forceinline__ void tile_row_head(const AttentionParams& p, const FlashTile& f, int64_t m, int64_t& row,
                                              int64_t& head) {
  const int64_t G = p.n_heads / p.n_kv_heads;
  row = f.s.row0 + f.first_q + m / G;
  head = f.kvh * G + m % G;
}

// Tile row m's queries at columns c .. c + 7 as bf16 terms (hi, and lo = the rounding residuals) for a kernel's
// shared-memory copy of them; zeros past the tile.
template <int D>
__device__ __forceinline__ void query_chunk(const AttentionParams& p, const FlashTile& f, int64_t m, int64_t c,
                                            uint4& hi, uint4& lo) {
  float4 a = make_float4(0, 0, 0, 0), b = a;
  if (m < f.valid_rows) {
    int64_t row = 0, head = 0;
    tile_row_head(p, f, m, row, head);
    const float* src = p.q + (row * p.n_heads + head) * D + c;
    a = *reinterpret_cast<const float4*>(src);
    b = *reinterpret_cast<const float4*>(src + 4);
  }
  hi = make_uint4(pack_bf16(a.x, a.y), pack_bf16(a.z, a.w), pack_bf16(b.x, b.y), pack_bf16(b.z, b.w));
  lo = make_uint4(pack_residual(a.x, a.y), pack_residual(a.z, a.w), pack_residual(b.x, b.y), pack_residual(b.z, b.w));
}

// Tile row m: false past the tile; else its output row, head and visible keys [lo, hi].
__device__ __forceinline__ bool flash_row(const AttentionParams& p, const FlashTile& f, int64_t m, int64_t& out_row,
                                          int64_t& head, int64_t& lo, int64_t& hi) {
  if (m >= f.valid_rows) return false;
  tile_row_head(p, f, m, out_row, head);
  key_range(p, f.s, out_row, lo, hi);
  return true;
}

// Writes a thread's two rows (g and g + 8 of its warp's 16; lane 4g + t) of output columns [col0, col0 + 8 N8):
// normalised when the keys are not split, else as this split's partial [m, l, acc[D]] for merge_kernel (m_unit
// turns m_run into natural-log units; writes_ml: this thread's columns include the row's m and l). o holds, per
// 8-column block i, (row g: columns 2t, 2t + 1) and (row g + 8: the same) at 4i .. 4i + 3; l_run is the thread's
// share of each row's sum (the quad's four are added here: every lane must call this).
template <int D, int N8>
__device__ __forceinline__ void store_flash_rows(const AttentionParams& p, int64_t split, const float* o, int col0,
                                                 const float (&m_run)[2], const float (&l_run)[2],
                                                 const bool (&valid)[2], const int64_t (&out_row)[2],
                                                 const int64_t (&head)[2], bool writes_ml, float m_unit) {
  const int t = int(threadIdx.x) % 4;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float l = l_run[h];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    if (!valid[h]) continue;
    const int64_t rh = out_row[h] * p.n_heads + head[h];
    if (p.splits == 1) {
      float* out = p.out + rh * D + col0 + 2 * t;
      const float inv = 1.0f / l;
#pragma unroll
      for (int i = 0; i < N8; ++i)
        *reinterpret_cast<float2*>(out + i * 8) = make_float2(o[4 * i + 2 * h] * inv, o[4 * i + 2 * h + 1] * inv);
    } else {
      float* part = p.partial + (rh * p.splits + split) * (D + 2);
      if (t == 0 && writes_ml) {
        part[0] = m_run[h] * m_unit;
        part[1] = l;
      }
#pragma unroll
      for (int i = 0; i < N8; ++i) {
        part[2 + col0 + i * 8 + 2 * t] = o[4 * i + 2 * h];
        part[2 + col0 + i * 8 + 2 * t + 1] = o[4 * i + 2 * h + 1];
      }
    }
  }
}

// The decode kernel's limits (plan_attention picks it only within them).
constexpr int kDecodeWarps = 8;  // warps per block, each over its own keys
// Query heads one decode-kernel tile takes for a GQA group at head_dim, 0 where the kernel cannot: 4 (head_dim
// <= 256), 2 or 1, the largest that divides the group. A larger group spans group / that tiles, which read the
// same keys and values (the 12B's full layers: 16 heads of dim 512 as 8 tiles of 2; the repeated reads hit L2,
// where the tensor-core flash kernel ran its 16 rows at ~0.1-0.2 of the copy bandwidth).
int64_t decode_tile_heads(int64_t head_dim, int64_t group);
bool decode_kernel_supports(int64_t head_dim, int64_t group);

// The MQA decode kernel (attention_mqa.cu): one-row tiles of a 16-head group at head dims 256 / 512, modes Fast,
// Exact and ExactFp8Kv; keys per step (splits are whole steps). Runs over p's decode tiles when p.mqa (p.decode_splits
// key splits); the caller merges splits.
bool mqa_decode_supports(int64_t head_dim, int64_t group, AttentionMode mode);
int64_t mqa_decode_step_keys();
void launch_mqa_decode_attention(const AttentionParams& p, cudaStream_t stream);

// The wgmma prefill kernel (attention_wgmma.cu): head dims 256 / 512, Fast / Exact / ExactFp8Kv, a GQA group that
// divides its tile rows, on a chip that runs sm_90a code.
bool wgmma_attention_supports(int64_t head_dim, int64_t group, AttentionMode mode);
int64_t wgmma_tile_rows(int64_t head_dim);  // (query, head) rows per tile: 128 at head dim 256, 64 at 512

// Runs it over p's flash tiles (p.wgmma), after converting the step's fresh k / v to bf16 (e4m3 for the fp8 cache) in
// fresh_kv (2 x rows x n_kv_heads x head_dim elements); the caller merges splits.
void launch_wgmma_attention(const AttentionParams& p, uint16_t* fresh_kv, cudaStream_t stream);

// Runs the decode kernel over p's decode tiles (after its n_tiles flash tiles, p.decode_splits key splits); the
// caller merges splits.
void launch_decode_attention(const AttentionParams& p, cudaStream_t stream);

}  // namespace ug::cuda
