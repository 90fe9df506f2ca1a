// CUDA attention of the Gemma 4 decoder over a batch of sequences (f32 q/k/v in device memory). The
// CPU op cpu::attention_batch (backend/cpu/ops.h) is its oracle: the same visible-key rule per
// query (causal, the sliding window, bidirectional blocks that extend a query's range to the end of
// its block), keys before a sequence's chunk read from its cache (ring slot = pos % capacity,
// linear slot = pos), the chunk's own keys from the step's fresh k/v. Online softmax in f32 (the
// CPU normalises with a double sum: results agree to f32 rounding).
//
// Parallelism: one warp per (query row, head, key split). With few queries (decode) the visible
// keys are split over up to `max_splits` warps whose partial (max, sum, acc) are merged by a second
// kernel (flash-decoding); with many queries (prefill) every warp takes a query's whole range.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace ug::cuda {

// One sequence of the step, for one layer. Device-memory array (also what kv_store appends with).
struct AttentionSeq {
  float* cache_k = nullptr;  // [slots, n_kv_heads, head_dim]: positions < chunk_start
  float* cache_v = nullptr;
  int64_t ring_capacity = 0;  // 0: linear (slot = position)
  int64_t row0 = 0;           // first row of this sequence in q / k / v / out
  int64_t n_rows = 0;         // its queries, at positions chunk_start ..
  int64_t chunk_start = 0;
};

struct AttentionParams {
  const float* q = nullptr;             // [rows, n_heads, head_dim]
  const float* k = nullptr;             // [rows, n_kv_heads, head_dim] fresh keys of the step
  const float* v = nullptr;             // [rows, n_kv_heads, head_dim]
  float* out = nullptr;                 // [rows, n_heads, head_dim]
  const AttentionSeq* seqs = nullptr;   // [n_seqs] (device)
  const int32_t* row_seq = nullptr;     // [rows] sequence of each row (device)
  const int32_t* block_last = nullptr;  // [rows] row index of the last row of the row's bidirectional block, or
                                        //   -1; nullptr = no blocks (full layers: always nullptr, variant A)
  float* partial = nullptr;             // scratch, attention_partial_floats(...) floats (device); may be nullptr
                                        //   when max_splits == 1
  int64_t rows = 0;                     // >= 1
  int64_t n_seqs = 0;                   // >= 1
  int64_t n_heads = 0;                  // multiple of n_kv_heads
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;    // 1 .. 512
  int64_t window = 0;      // sliding window W (key visible iff q - k < W); 0 = full attention
  int64_t max_keys = 0;    // upper bound of visible keys of any row (sizes the split)
  int64_t max_splits = 1;  // >= 1: split the keys of a query over up to this many warps
  float scale = 1.0f;
};

// Floats of scratch `partial` that attention() with these fields needs: 0 unless it splits the keys, which it
// does only for few rows (decode), so prefill needs none.
int64_t attention_partial_floats(int64_t rows, int64_t n_heads, int64_t head_dim, int64_t max_keys, int64_t max_splits);

void attention(const AttentionParams& p, cudaStream_t stream = nullptr);

}  // namespace ug::cuda

namespace ug::cuda {

// Appends the step's fresh k / v rows to each sequence's cache (same slots as KvCache::store: a
// ring keeps only the last `capacity` rows of a chunk). Run after attention, which reads the old
// slots.
struct KvStoreParams {
  const float* k = nullptr;  // [rows, row_size]
  const float* v = nullptr;
  const AttentionSeq* seqs = nullptr;  // [n_seqs] (device): cache pointers, ring capacity, row0, chunk_start
  const int32_t* row_seq = nullptr;    // [rows] (device)
  int64_t rows = 0;                    // >= 1
  int64_t row_size = 0;                // n_kv_heads * head_dim
};
void kv_store(const KvStoreParams& p, cudaStream_t stream = nullptr);

}  // namespace ug::cuda
