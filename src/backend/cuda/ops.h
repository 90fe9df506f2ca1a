// CUDA element-wise / normalisation ops of the Gemma 4 decoder (f32 activations in device memory). Each op
// mirrors the CPU op of the same name in backend/cpu/ops.h, which is its oracle (tests/cuda). Every
// entry point validates its params and throws ug::Error naming the op and the bad field; launches are
// asynchronous on `stream` (nullptr = the legacy default stream).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace ug::cuda {

// Element type of an optional weight vector.
enum class WeightType : uint8_t { None, F32, BF16 };

// out[r] = (residual ? residual[r] : 0) + x[r] * (mean(x[r]^2) + eps)^-1/2 * (w ? w : 1), for r < rows.
// The fused residual add is Gemma's "h = r + RMSNorm_post(a)". Sum of squares in double, like the CPU.
struct RmsNormParams {
  const float* x = nullptr;                   // [rows, dim] input
  float* out = nullptr;                       // [rows, dim] output; may equal x or residual (each element is read
                                              //   before it is written, by the same thread)
  const void* weight = nullptr;               // [dim] scale, element type weight_type; nullptr iff weight_type None
  WeightType weight_type = WeightType::None;  // None: no scale (Gemma's v_norm)
  const float* residual = nullptr;            // [rows, dim] added to the normalised value, or nullptr
  int64_t rows = 0;                           // >= 1 (rows of dim elements; e.g. tokens, or tokens x heads)
  int64_t dim = 0;                            // >= 1, length normalised over
  double eps = 1e-6;                          // added to mean(x^2); > 0
};
void rms_norm(const RmsNormParams& p, cudaStream_t stream = nullptr);

// out[r] = LayerNorm(x[r] + add + (table[table_rows_a[r]] + table[table_rows_b[r]])) * weight + bias, each add
// optional (the vision embedder: the dense bias before its second LayerNorm, the factorised x / y position rows
// before its third). Mean and variance in double, like cpu::layer_norm_to (its oracle).
struct LayerNormParams {
  const float* x = nullptr;               // [rows, dim]
  float* out = nullptr;                   // [rows, dim], not x
  const float* weight = nullptr;          // [dim]
  const float* bias = nullptr;            // [dim]
  const float* add = nullptr;             // [dim] added to every row first, or nullptr
  const float* table = nullptr;           // [*, dim] rows added by index (a + b, then to x), or nullptr
  const int32_t* table_rows_a = nullptr;  // [rows] (device), with table
  const int32_t* table_rows_b = nullptr;  // [rows] (device), with table
  int64_t rows = 0;                       // >= 1
  int64_t dim = 0;                        // >= 1
  double eps = 1e-5;                      // > 0
};
void layer_norm(const LayerNormParams& p, cudaStream_t stream = nullptr);

// Rotate-half RoPE in place: for each token t, head h and pair i < head_dim/2 the dims (i, i + head_dim/2)
// rotate by angle float(positions[t]) * inv_freq[i] (f32 product; cos/sin in double, rounded to f32, as the
// CPU). inv_freq comes from ug::rope_inv_freq: both "default" and "proportional" (zeros for pairs that do
// not rotate; those dims pass through bit-exactly).
struct RopeParams {
  float* x = nullptr;                  // [n_tokens, n_heads, head_dim], rotated in place
  const int64_t* positions = nullptr;  // [n_tokens] absolute positions (device memory)
  const float* inv_freq = nullptr;     // [head_dim / 2] (device memory)
  int64_t n_tokens = 0;                // >= 1
  int64_t n_heads = 0;                 // >= 1
  int64_t head_dim = 0;                // even, >= 2
};
void rope(const RopeParams& p, cudaStream_t stream = nullptr);

// The (cos, sin) pairs RoPE applies at each row's position: table[row, i] = (cos, sin) of positions[row] x
// inv_freq[i], exactly as rope and qkv_prepare compute them. One table per step and inv_freq serves every layer
// that shares them (qkv_prepare's QkvPrepareParams::rope_table), so the double-precision sincos leaves each layer's
// latency chain.
struct RopeTableParams {
  const int64_t* positions = nullptr;  // [rows] absolute positions (device memory)
  const float* inv_freq = nullptr;     // [pairs] (device memory)
  float2* table = nullptr;             // [rows, pairs] (cos, sin)
  int64_t rows = 0;                    // >= 1
  int64_t pairs = 0;                   // head_dim / 2, >= 1
};
void rope_table(const RopeTableParams& p, cudaStream_t stream = nullptr);

// GeGLU: out[i] = gelu_tanh(gate[i]) * up[i], gelu_tanh(z) = 0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))).
struct GeluTanhMulParams {
  const float* gate = nullptr;  // [n]
  const float* up = nullptr;    // [n]
  float* out = nullptr;         // [n]; may equal gate or up
  int64_t n = 0;                // >= 1
};
void gelu_tanh_mul(const GeluTanhMulParams& p, cudaStream_t stream = nullptr);

// Final logit softcap in place: x <- cap * tanh(x / cap).
struct SoftcapParams {
  float* x = nullptr;  // [n]
  int64_t n = 0;       // >= 1
  float cap = 0;       // > 0 (a model without softcap does not call this)
};
void softcap(const SoftcapParams& p, cudaStream_t stream = nullptr);

// dst[i] = bf16(src[i]), round to nearest even; bitwise ug::f32_to_bf16 for every non-NaN value (NaN stays NaN).
struct ToBf16Params {
  const float* src = nullptr;  // [n]
  uint16_t* dst = nullptr;     // [n] bf16 bit patterns
  int64_t n = 0;               // >= 1
};
void to_bf16(const ToBf16Params& p, cudaStream_t stream = nullptr);

// Two-term bf16 split: hi[i] = bf16(src[i]), lo[i] = bf16(src[i] - hi[i]) (round to nearest even).
struct ToBf16SplitParams {
  const float* src = nullptr;  // [n]
  uint16_t* hi = nullptr;      // [n]
  uint16_t* lo = nullptr;      // [n]
  int64_t n = 0;               // >= 1
};
void to_bf16_split(const ToBf16SplitParams& p, cudaStream_t stream = nullptr);

// An f32 matrix held as partial outputs not yet summed (a split and/or k-sliced GEMM, Gemm::run_chunks): element i
// is data[i] + data[stride + i] + ... + data[(chunks - 1) stride + i], summed in that order (as sum_chunks does,
// so a kernel that sums while it loads gets the same bits). Kernels reading a GEMM's output take this form: one
// pass over the partials and one launch fewer than sum_chunks + the kernel.
struct F32Chunks {
  const float* data = nullptr;
  int64_t chunks = 1;  // >= 1
  int64_t stride = 0;  // floats from one chunk to the next (unused when chunks == 1)
};

// dst[i] = src[i] + src[n + i] + ... + src[(chunks - 1) n + i], summed in that order: the partial outputs of a
// split and/or k-sliced GEMM.
struct SumChunksParams {
  const float* src = nullptr;  // [chunks, n]
  float* dst = nullptr;        // [n], must not overlap src
  int64_t n = 0;               // >= 1
  int64_t chunks = 0;          // >= 1
};
void sum_chunks(const SumChunksParams& p, cudaStream_t stream = nullptr);

// out[r] = argmax of row r of x[rows, n], ties -> the lowest index, skipping the row's excluded ids; -1 when a
// considered value is NaN or +inf (ug::argmax_lowest is the oracle). Greedy decode reads 4 bytes per sequence
// back instead of the row of logits.
struct ArgmaxRowsParams {
  const float* x = nullptr;               // [rows, n]
  int32_t* out = nullptr;                 // [rows] (device)
  int64_t rows = 0;                       // >= 1
  int64_t n = 0;                          // 1 .. 2^31 - 1
  const int32_t* excluded_at = nullptr;   // [rows + 1] offsets into excluded_ids (device), or nullptr
  const int32_t* excluded_ids = nullptr;  // (device)
  int64_t max_excluded = 0;               // longest list of one row, at most kArgmaxMaxExcluded
};
constexpr int64_t kArgmaxMaxExcluded = 256;
void argmax_rows(const ArgmaxRowsParams& p, cudaStream_t stream = nullptr);

// The candidates of a top-k sampler for row r of x[rows, n]: every finite logit >= the row's k[r]-th largest finite
// logit (ties with it all kept, as HF's top-k; every finite logit when fewer than k[r]), skipping the row's excluded
// ids (as argmax_rows), in no particular order. out row r is [1 + 2 * capacity] int32: [0] the number of candidates,
// -1 when a considered logit is NaN or +inf, -2 when there are more than `capacity` (ties; then nothing else is
// written), then `capacity` ids, then `capacity` f32 values (bit patterns). k[r] = 0: the row is skipped (count 0).
// ug::select_top_logits is the oracle. A sampled decode step reads a few KB per sequence back instead of the 1 MB
// row. Two kernels: chunks of the rows in parallel (even one row fills the GPU), then a merge per row through
// `scratch`.
struct TopLogitsRowsParams {
  const float* x = nullptr;              // [rows, n]
  const int32_t* k = nullptr;            // [rows] (device), each 0 .. n
  int32_t* out = nullptr;                // [rows, 1 + 2 * capacity] (device)
  int32_t* scratch = nullptr;            // [top_logits_scratch_ints(rows, n, capacity)] (device)
  int64_t rows = 0;                      // 1 .. 65535
  int64_t n = 0;                         // 1 .. 2^31 - 1
  int64_t capacity = 0;                  // 1 .. min(n, 4096)
  const int32_t* excluded_at = nullptr;  // as ArgmaxRowsParams
  const int32_t* excluded_ids = nullptr;
  int64_t max_excluded = 0;
};
int64_t top_logits_scratch_ints(int64_t rows, int64_t n, int64_t capacity);
void top_logits_rows(const TopLogitsRowsParams& p, cudaStream_t stream = nullptr);

// h[i] = (h[i] + branch[i]) * scale (scale 1: a plain residual add, bitwise h + branch).
struct AddScaledParams {
  float* h = nullptr;             // [n]
  const float* branch = nullptr;  // [n]
  float scale = 1.0f;
  int64_t n = 0;  // >= 1
};
void add_scaled(const AddScaledParams& p, cudaStream_t stream = nullptr);

// Token embedding rows: out[r] = bf16 table[tokens[r]] * scale, or overrides[override_index[r]] unscaled when
// that index is >= 0 (multimodal soft tokens, HF masked_scatter). Mirrors cpu::embedding_row.
struct EmbedParams {
  const uint16_t* table = nullptr;          // [vocab, dim] bf16 (device)
  const int32_t* tokens = nullptr;          // [rows] ids in [0, vocab) (device; checked by the caller)
  const int32_t* override_index = nullptr;  // [rows] -1 or a row of overrides (device); nullptr = none
  const float* overrides = nullptr;         // [*, dim] (device)
  float* out = nullptr;                     // [rows, dim]
  int64_t rows = 0;                         // >= 1
  int64_t dim = 0;                          // >= 1
  float scale = 1.0f;
};
void embed(const EmbedParams& p, cudaStream_t stream = nullptr);

// dst[j] = src[index[j]] for rows of `dim` floats (gathers the rows that need logits).
struct GatherRowsParams {
  const float* src = nullptr;      // [*, dim]
  const int32_t* index = nullptr;  // [count] (device)
  float* dst = nullptr;            // [count, dim]
  int64_t count = 0;               // >= 1
  int64_t dim = 0;                 // >= 1
};
void gather_rows(const GatherRowsParams& p, cudaStream_t stream = nullptr);

}  // namespace ug::cuda
