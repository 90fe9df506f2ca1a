// Fused kernels of the decoder layer: each replaces a chain of ops from backend/cuda/ops.h that would otherwise
// pass over the same rows several times (and, in a batch-1 decode step, cost a launch and a latency-bound load
// each). Each is tested against the CPU ops it fuses (tests/cuda/cuda_fused_ops_test.cc).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "backend/cuda/attention.h"

namespace ug::cuda {

// The residual step between the two halves of a Gemma layer, per row r < rows:
//   y = RMSNorm(branch[r]) * post_weight          (post_weight nullptr: no scale)
//   h[r] = (h[r] + y) * scale                      (add_scaled: scale 1 is a plain add)
//   x[r] = RMSNorm(h[r]) * next_weight             (only when x is set; next_weight nullptr: no scale)
// Sums of squares in double, like rms_norm. x may not alias h or branch. The branch may be a GEMM's unsummed
// partial outputs (branch_chunks > 1, F32Chunks in ops.h), and x may also be written as the bf16 input of the
// next sublayer's GEMM (x_hi = bf16(x), and x_lo = bf16(x - x_hi) for a two-term split, as to_bf16_split).
struct ResidualNormParams {
  const float* branch = nullptr;       // [rows, dim], or [branch_chunks][rows, dim] partials summed in order
  int64_t branch_chunks = 1;           // >= 1
  int64_t branch_stride = 0;           // floats between chunks (rows x dim for a GEMM's partials)
  float* h = nullptr;                  // [rows, dim] residual stream, updated
  float* x = nullptr;                  // [rows, dim] the next sublayer's input, or nullptr
  uint16_t* x_hi = nullptr;            // [rows, dim] bf16(x), or nullptr (needs x)
  uint16_t* x_lo = nullptr;            // [rows, dim] bf16(x - x_hi), or nullptr (needs x_hi)
  const float* post_weight = nullptr;  // [dim] or nullptr
  const float* next_weight = nullptr;  // [dim] or nullptr
  float scale = 1.0f;
  int64_t rows = 0;  // >= 1
  int64_t dim = 0;   // >= 1
  double eps = 1e-6;
};
void residual_norm(const ResidualNormParams& p, cudaStream_t stream = nullptr);

// The attention inputs of one layer from its fused projection qkv[rows, (heads + kv_heads + v_heads) * head_dim]
// (q heads, then k heads, then v heads when the layer has v_proj; v_heads = has_v ? kv_heads : 0):
//   q = RoPE(RMSNorm(q part) * q_weight), k = RoPE(RMSNorm(k part) * k_weight), v = RMSNorm(v part, no scale),
// where the v part is the raw k part when !has_v (k_eq_v). RoPE as ug::cuda::rope (rotate-half, f32 angle
// position * inv_freq[i], cos/sin in double). One warp per (row, head).
// qkv may be a GEMM's unsummed partial outputs (qkv_chunks > 1: summed in order as they are loaded).
struct QkvPrepareParams {
  const float* qkv = nullptr;          // [rows, (heads + kv_heads + v_heads) * head_dim]
  int64_t qkv_chunks = 1;              // >= 1
  int64_t qkv_stride = 0;              // floats between chunks
  float* q = nullptr;                  // [rows, heads, head_dim]
  float* k = nullptr;                  // [rows, kv_heads, head_dim]
  float* v = nullptr;                  // [rows, kv_heads, head_dim]
  const float* q_weight = nullptr;     // [head_dim]
  const float* k_weight = nullptr;     // [head_dim]
  const int64_t* positions = nullptr;  // [rows] absolute positions (device)
  const float* inv_freq = nullptr;     // [head_dim / 2] (device)
  const float2* rope_table = nullptr;  // [rows, head_dim / 2]: rope_table's (cos, sin) for these positions and
                                       // inv_freq (the same values), or nullptr: computed here
  int64_t rows = 0;                    // >= 1
  int64_t heads = 0;                   // >= 1
  int64_t kv_heads = 0;                // >= 1
  int64_t head_dim = 0;                // even, 2 .. kQkvMaxHeadDim
  bool has_v = true;
  double eps = 1e-6;
  // Also append the step's k and v rows to the caches, exactly as kv_store would (store_seqs set). Only for a
  // step whose attention never reads the slots they overwrite: one row per sequence and every ring at least as
  // long as the window (the decoder's decode steps), so that kv_store's launch after attention can go.
  const AttentionSeq* store_seqs = nullptr;  // [n_seqs] (device), as KvStoreParams::seqs
  const int32_t* store_row_seq = nullptr;    // [rows] (device)
  KvType store_type = KvType::Bf16;
  float store_k_scale = 1.0f;
};
constexpr int64_t kQkvMaxHeadDim = 512;
void qkv_prepare(const QkvPrepareParams& p, cudaStream_t stream = nullptr);

// GeGLU of a fused gate/up projection: out[r, i] = gelu_tanh(gate_up[r, i]) * gate_up[r, inter + i]. gate_up may
// be a GEMM's unsummed partial outputs (gate_up_chunks > 1: summed in order as they are loaded).
struct GegluRowsParams {
  const float* gate_up = nullptr;  // [rows, 2 * inter]
  int64_t gate_up_chunks = 1;      // >= 1
  int64_t gate_up_stride = 0;      // floats between chunks
  float* out = nullptr;            // [rows, inter] f32, or:
  uint16_t* out_bf16 = nullptr;    // [rows, inter] rounded to bf16 (nearest even, as to_bf16): the input of a
                                   // bf16 matmul, written directly instead of f32 + a rounding pass. Exactly one.
  uint16_t* out_lo = nullptr;      // with out_bf16: [rows, inter] bf16(out - out_bf16), the second term of a
                                   // two-term split (as to_bf16_split), or nullptr
  int64_t rows = 0;                // >= 1
  int64_t inter = 0;               // >= 1
};
void geglu_rows(const GegluRowsParams& p, cudaStream_t stream = nullptr);

}  // namespace ug::cuda
