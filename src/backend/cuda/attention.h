// CUDA attention of the Gemma 4 decoder over a batch of sequences: f32 queries and fresh keys/values of the
// step, KV caches in device memory (bf16; f32 in the f32-faithful mode; fp8 e4m3 on request). The CPU op
// cpu::attention_batch (backend/cpu/ops.h) is its oracle (on bf16-rounded keys and values): the same visible-key rule
// per query (causal, the sliding window, bidirectional blocks that extend a query's range to the end of its block),
// keys before a sequence's chunk read from its cache (ring slot = pos % capacity, linear slot = pos), the chunk's own
// keys from the step's fresh k/v (rounded to bf16 on load, exactly as kv_store stores them).
//
// One flash-attention kernel on tensor cores (mma.sync m16n8k16 bf16, f32 accumulate, f32 online softmax)
// serves prefill and decode. A tile is up to 16 x row_warps (query, head) pairs of one sequence that share a
// kv head (GQA/MQA heads packed into the rows, so every K/V block is read once per tile), and a range of its
// keys (flash-decoding splits when tiles alone leave the chip idle; a second kernel merges them). Sequences
// with one row (decode) take a CUDA-core kernel instead at head dims 128 / 256 / 512 (attention_decode.cu says why):
// in a pure decode step all of them, in a step that mixes decode rows with prefill chunks the one-row sequences
// (unsplit) while the chunks take the flash kernel; more than 4 one-row sequences whose GQA group is 16 heads (the
// 12B's full layers) take a tensor-core decode kernel instead (attention_mqa.cu). On Hopper, prefill
// chunks at head dims 256 / 512 with a bf16 cache take the same flash algorithm on warpgroup MMA instead
// (attention_wgmma.cu: 1.5-2x the mma.sync kernel).
// AttentionMode says how operands become bf16 tensor-core inputs (a value split into two bf16 terms hi + lo
// carries 16 mantissa bits: products of two-term operands are f32-faithful).
#pragma once

#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

namespace ug::cuda {

enum class AttentionMode {
  Fast,        // bf16 queries and probabilities against bf16 KV (like HF's bf16 model)
  Exact,       // two-term queries and probabilities against bf16 KV (2x the tensor-core work)
  ExactF32Kv,  // f32 KV, two-term keys and values too: f32-faithful attention (3x)
  ExactFp8Kv,  // two-term queries and probabilities against an fp8 (e4m3) KV cache: half the bytes of bf16
};

// How a KV cache stores its values. Fp8: e4m3, rounded to nearest with saturation at +-448, keys divided by the
// call's k_scale first (AttentionParams); exactly representable in bf16, which is how the kernels compute on them.
enum class KvType { Bf16, F32, Fp8 };
__host__ __device__ constexpr KvType kv_type_of(AttentionMode m) {
  return m == AttentionMode::ExactF32Kv ? KvType::F32 : m == AttentionMode::ExactFp8Kv ? KvType::Fp8 : KvType::Bf16;
}
__host__ __device__ constexpr int64_t kv_type_bytes(KvType t) {
  return t == KvType::F32 ? 4 : t == KvType::Bf16 ? 2 : 1;
}
// An fp8 cache's key divisor: a power of two >= 1 (so that dividing by it is exact).
inline bool valid_k_scale(float s) {
  int e = 0;
  return s >= 1.0f && std::frexp(s, &e) == 0.5f;
}

// One sequence of the step, for one layer. Device-memory array (also what kv_store appends with).
struct AttentionSeq {
  void* cache_k = nullptr;  // [slots, n_kv_heads, head_dim] as kv_type_of(mode) says: positions < chunk_start
  void* cache_v = nullptr;
  int64_t ring_capacity = 0;  // 0: linear (slot = position)
  int64_t row0 = 0;           // first row of this sequence in q / k / v / out
  int64_t n_rows = 0;         // its queries, at positions chunk_start ..
  int64_t chunk_start = 0;
};

// Where position pos lives in a sequence's cache: its ring slot, or pos itself in a linear cache.
__host__ __device__ constexpr int64_t cache_slot(const AttentionSeq& s, int64_t pos) {
  return s.ring_capacity > 0 ? pos % s.ring_capacity : pos;
}

// How one call divides its work; made on the host from the sequences' row counts only, so a step plans once
// per layer shape and uploads `tiles`.
struct AttentionPlan {
  int row_warps = 1;             // flash kernel: 1, 2 or 4 warps of 16 tile rows each
  int block_warps = 4;           // warps per block at least (the extra ones help stage K/V)
  int64_t queries_per_tile = 1;  // queries of one sequence per tile (16 x row_warps / GQA group)
  int64_t splits = 1;            // key splits per flash tile
  int stages = 1;                // K/V blocks in shared memory: 2 loads the next while computing this one
  int64_t decode_splits = 1;     // key splits per decode-kernel tile (at most one of the two kernels splits)
  // The flash tiles run on the wgmma kernel (Hopper, head dim 256 / 512, Fast / Exact / ExactFp8Kv; queries_per_tile
  // x group = its 128 / 64 rows) instead of the mma.sync one; it needs a bf16 (fp8 cache: e4m3) copy of the step's
  // fresh k / v (in the scratch attention_partial_floats counts, after the split partials).
  bool wgmma = false;
  // The decode tiles run on the tensor-core MQA decode kernel (attention_mqa.cu) instead of the CUDA-core one: one
  // per (one-row sequence, kv head) of a 16-head group at head dim 256 / 512, not the f32 cache (the 12B's full
  // layers beyond 4 decode rows, in pure decode steps and beside prefill chunks).
  bool mqa = false;
  int64_t n_kv_heads = 0;  // of the planned call (sizes that copy)
  // [n_flash_tiles + n_decode_tiles, 3]: sequence, first query (row within the sequence), kv head; the flash
  // kernel's tiles first, then the decode kernel's (one per one-row sequence and group of query heads: for those
  // the third field t means heads t x n .. t x n + n - 1, n = the query heads one decode tile takes: the group on
  // the MQA kernel).
  std::vector<int32_t> tiles;
  int64_t n_decode_tiles = 0;
  int64_t n_tiles() const { return int64_t(tiles.size() / 3); }
  int64_t n_flash_tiles() const { return n_tiles() - n_decode_tiles; }
};

// seq_rows[i]: rows of sequence i this step. max_keys: most visible keys of any row (sizes the splits).
// The flash tiles take the wgmma kernel where it supports the call and the longest sequence fills one of its tiles
// (UG_ATTN_WGMMA=0 or allow_wgmma false: never; tests compare both).
// Environment knobs for kernel experiments (defaults measured on the H200, docs/perf.md): UG_ATTN_TARGET_BLOCKS
// (blocks below which keys are split, 1056), UG_ATTN_DECODE_FLASH_TARGET (the same when every flash tile is one
// row: 264), UG_ATTN_SPANNING_MAX_SEQS (most one-row sequences whose GQA group may span several decode tiles, 4),
// UG_ATTN_MQA (0: never the MQA decode kernel), UG_ATTN_MQA_TARGET (blocks below which it splits keys, 132;
// UG_ATTN_MQA_WARPS=16 runs its 16-warp variant at head dim 512),
// UG_ATTN_MIN_WARPS (warps per block at least, 4), UG_ATTN_STAGES (1: no double buffering), UG_ATTN_DECODE (0:
// never the decode kernel), UG_ATTN_DECODE_TARGET (blocks below which the decode kernel splits keys, 264).
// allow_decode_kernel false: the flash kernel for every row (tests compare both); it also rules out the MQA decode
// kernel.
AttentionPlan plan_attention(std::span<const int64_t> seq_rows, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                             AttentionMode mode, int64_t max_keys, int64_t max_splits = 128,
                             bool allow_decode_kernel = true, bool allow_wgmma = true);

// Floats of scratch `partial` a call with this plan needs (0 without splits or the wgmma kernel).
int64_t attention_partial_floats(const AttentionPlan& plan, int64_t rows, int64_t n_heads, int64_t head_dim);

struct AttentionParams {
  const float* q = nullptr;             // [rows, n_heads, head_dim]
  const float* k = nullptr;             // [rows, n_kv_heads, head_dim] fresh keys of the step
  const float* v = nullptr;             // [rows, n_kv_heads, head_dim]
  float* out = nullptr;                 // [rows, n_heads, head_dim]
  const AttentionSeq* seqs = nullptr;   // [n_seqs] (device)
  const int32_t* tiles = nullptr;       // plan.tiles (device)
  const int32_t* block_last = nullptr;  // [rows] row index of the last row of the row's bidirectional block, or
                                        //   -1; nullptr = no blocks (full layers: always nullptr, variant A)
  float* partial = nullptr;             // scratch, attention_partial_floats(...) floats (device) when that is > 0
  int64_t n_tiles = 0;                  // plan.n_flash_tiles() (the flash kernel's tiles, first in `tiles`)
  int64_t n_decode_tiles = 0;           // plan fields
  int64_t decode_splits = 1;
  int row_warps = 1;
  int block_warps = 4;
  int64_t queries_per_tile = 1;
  int64_t splits = 1;
  int stages = 1;
  bool wgmma = false;
  bool mqa = false;
  int64_t rows = 0;     // >= 1
  int64_t n_seqs = 0;   // >= 1
  int64_t n_heads = 0;  // multiple of n_kv_heads, at most 64 per kv head
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;  // 16, 32, 64, 128, 256 or 512
  int64_t window = 0;    // sliding window W (key visible iff q - k < W); 0 = full attention
  float scale = 1.0f;
  AttentionMode mode = AttentionMode::Exact;  // the same as the plan's
  // ExactFp8Kv: the caches hold keys / k_scale (a power of two >= 1 that keeps them within e4m3's range; the
  // step's fresh keys are rounded the same way); scores are scaled back. Ignored by the other modes.
  float k_scale = 1.0f;
};

void attention(const AttentionParams& p, cudaStream_t stream = nullptr);

// Sets the plan fields of p.
inline void apply_plan(AttentionParams& p, const AttentionPlan& plan, const int32_t* device_tiles) {
  p.tiles = device_tiles;
  p.n_tiles = plan.n_flash_tiles();
  p.n_decode_tiles = plan.n_decode_tiles;
  p.decode_splits = plan.decode_splits;
  p.row_warps = plan.row_warps;
  p.block_warps = plan.block_warps;
  p.queries_per_tile = plan.queries_per_tile;
  p.splits = plan.splits;
  p.stages = plan.stages;
  p.wgmma = plan.wgmma;
  p.mqa = plan.mqa;
}

// Appends the step's fresh k / v rows to each sequence's cache, as bf16, f32 or fp8 (same slots as KvCache::store:
// a ring keeps only the last `capacity` rows of a chunk). Run after attention, which reads the old slots.
struct KvStoreParams {
  const float* k = nullptr;  // [rows, row_size]
  const float* v = nullptr;
  const AttentionSeq* seqs = nullptr;  // [n_seqs] (device): cache pointers, ring capacity, row0, chunk_start
  const int32_t* row_seq = nullptr;    // [rows] (device)
  int64_t rows = 0;                    // >= 1
  int64_t row_size = 0;                // n_kv_heads * head_dim
  KvType type = KvType::Bf16;          // kv_type_of(the attention mode)
  float k_scale = 1.0f;                // Fp8: keys are stored divided by it (AttentionParams::k_scale)
};
void kv_store(const KvStoreParams& p, cudaStream_t stream = nullptr);

}  // namespace ug::cuda
