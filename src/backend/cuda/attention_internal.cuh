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

// The decode kernel's limits (plan_attention picks it only within them).
constexpr int kDecodeWarps = 8;  // warps per block, each over its own keys
bool decode_kernel_supports(int64_t head_dim, int64_t group);

// The wgmma prefill kernel (attention_wgmma.cu): head dims 256 / 512, Fast / Exact, a GQA group that divides its
// tile rows, on a chip that runs sm_90a code.
bool wgmma_attention_supports(int64_t head_dim, int64_t group, AttentionMode mode);
int64_t wgmma_tile_rows(int64_t head_dim);  // (query, head) rows per tile: 128 at head dim 256, 64 at 512

// Runs it over p's flash tiles (p.wgmma), after converting the step's fresh k / v to bf16 in fresh_kv
// (2 x rows x n_kv_heads x head_dim elements); the caller merges splits.
void launch_wgmma_attention(const AttentionParams& p, uint16_t* fresh_kv, cudaStream_t stream);

// Runs the decode kernel over p's decode tiles (after its n_tiles flash tiles, p.decode_splits key splits); the
// caller merges splits.
void launch_decode_attention(const AttentionParams& p, cudaStream_t stream);

}  // namespace ug::cuda
