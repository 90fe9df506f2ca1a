// See fused_ops.h. residual_norm: one block per row, the row held in registers between the two norms (every
// load issued before the first reduction: a batch-1 step is latency-bound). qkv_prepare: one warp per (row,
// head); lane l owns the rotate-half pairs (i, i + head_dim/2) with i = l + 32 j, so RoPE needs no exchange.
#include <cuda_bf16.h>

#include <algorithm>
#include <string>
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_math.cuh"
#include "backend/cuda/env_knob.h"
#include "backend/cuda/fused_ops.h"
#include "backend/cuda/kv_fp8.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/mma.cuh"

namespace ug::cuda {
namespace {

constexpr int kNormThreads = 256;
constexpr int kNormMaxPerThread = 32;  // dim <= 8192

// Rows from which residual_norm stops holding the norm weights in registers (kHoldWeights false; knob
// UG_NORM_STREAM_ROWS).
constexpr int64_t kNormStreamRows = 256;

// kPer: elements per thread (element i = threadIdx.x + j * kNormThreads).
// kHoldWeights: every load up front, the norm weights included, before waiting for the kernel that wrote branch
// (programmatic dependent launch): each later load would be another round trip after a reduction, and a decode
// step's few rows are latency-bound. Otherwise (a prefill chunk's thousands of rows) the weights are read where
// they are used, from L1 / L2: at 3,840 columns holding them took 144 registers, one block (one row) per SM, and
// the kernel ran at ~0.4 of the copy bandwidth; without them three rows per SM are in flight.
template <int kPer, bool kNext, bool kHoldWeights>
__global__ void __launch_bounds__(kNormThreads, kHoldWeights ? 1 : 3) residual_norm_kernel(ResidualNormParams p) {
  const int64_t row = blockIdx.x;
  const int dim = int(p.dim);
  const int64_t at = row * p.dim;
  float* h = p.h + at;
  pdl_launch_dependents();
  float b[kPer], r[kPer], wp[kHoldWeights ? kPer : 1], wn[kHoldWeights && kNext ? kPer : 1];
  if constexpr (kHoldWeights) {
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      const int i = threadIdx.x + j * kNormThreads;
      wp[j] = i < dim && p.post_weight ? p.post_weight[i] : 1.0f;
      if constexpr (kNext) wn[j] = i < dim && p.next_weight ? p.next_weight[i] : 1.0f;
    }
  }
  const auto post_weight = [&](int j, int i) { return kHoldWeights ? wp[j] : p.post_weight[i]; };
  const auto next_weight = [&](int j, int i) { return kHoldWeights ? wn[kNext ? j : 0] : p.next_weight[i]; };
  pdl_wait();
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int i = threadIdx.x + j * kNormThreads;
    r[j] = i < dim ? h[i] : 0.0f;
  }
  load_chunked(
      b, p.branch, p.branch_chunks, p.branch_stride, [&](int j) { return at + threadIdx.x + j * kNormThreads; },
      [&](int j) { return int(threadIdx.x) + j * kNormThreads < dim; });
  double ss = 0;
#pragma unroll
  for (int j = 0; j < kPer; ++j) ss += double(b[j]) * b[j];
  const float inv = float(1.0 / sqrt(block_sum<kNormThreads>(ss) / double(dim) + p.eps));
  double ss_next = 0;
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int i = threadIdx.x + j * kNormThreads;
    if (i >= dim) continue;
    float y = __fmul_rn(b[j], inv);  // rounded like the separate rms_norm and add_scaled kernels (no FMA)
    if (p.post_weight) y = __fmul_rn(y, post_weight(j, i));
    r[j] = p.scale == 1.0f ? __fadd_rn(r[j], y) : __fmul_rn(__fadd_rn(r[j], y), p.scale);
    h[i] = r[j];
    ss_next += double(r[j]) * r[j];
  }
  if constexpr (kNext) {
    const float inv_next = float(1.0 / sqrt(block_sum<kNormThreads>(ss_next) / double(dim) + p.eps));
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      const int i = threadIdx.x + j * kNormThreads;
      if (i >= dim) continue;
      float y = __fmul_rn(r[j], inv_next);
      if (p.next_weight) y = __fmul_rn(y, next_weight(j, i));
      p.x[at + i] = y;
      if (p.x_hi) {
        const Bf16Terms t = bf16_terms(y);
        p.x_hi[at + i] = t.hi;
        if (p.x_lo) p.x_lo[at + i] = t.lo;
      }
    }
  }
}

template <int kPer>
void launch_residual_norm(const ResidualNormParams& p, cudaStream_t stream) {
  static const int64_t stream_rows = env_knob("UG_NORM_STREAM_ROWS", kNormStreamRows);
  const bool hold = p.rows < stream_rows;
  const auto kernel = p.x ? (hold ? residual_norm_kernel<kPer, true, true> : residual_norm_kernel<kPer, true, false>)
                          : (hold ? residual_norm_kernel<kPer, false, true> : residual_norm_kernel<kPer, false, false>);
  launch_kernel("residual_norm_kernel", kernel, unsigned(p.rows), kNormThreads, 0, stream, p);
}

constexpr int kQkvWarps = 8;

// P: rotate-half pairs per lane, head_dim <= 64 P (registers for the largest head_dim only where it is used: at
// P 8 for every head_dim the kernel took 127 registers, two blocks per SM, and a prefill chunk's 65,536 warps ran
// at ~0.3 of the copy bandwidth).
template <int P>
__global__ void __launch_bounds__(kQkvWarps * 32) qkv_prepare_kernel(QkvPrepareParams p) {
  pdl_launch_dependents();
  pdl_wait();
  // 32-bit item math (qkv_prepare checks rows x slots < 2^31): a 64-bit division is a ~70-instruction call in
  // every warp's chain.
  const uint32_t slots = uint32_t(p.heads + 2 * p.kv_heads);
  const uint32_t item = blockIdx.x * kQkvWarps + threadIdx.x / 32;
  if (item >= uint32_t(p.rows) * slots) return;
  const int lane = int(threadIdx.x % 32);
  const int64_t row = item / slots, slot = item % slots;
  const int64_t d = p.head_dim, half = d / 2;
  const int64_t src_row = row * (p.heads + p.kv_heads + (p.has_v ? p.kv_heads : 0)) * d;  // offsets into qkv
  int64_t src;
  float* dst;
  const float* w;
  bool rotate = true;
  if (slot < p.heads) {
    src = src_row + slot * d;
    dst = p.q + (row * p.heads + slot) * d;
    w = p.q_weight;
  } else if (slot < p.heads + p.kv_heads) {
    const int64_t kh = slot - p.heads;
    src = src_row + (p.heads + kh) * d;
    dst = p.k + (row * p.kv_heads + kh) * d;
    w = p.k_weight;
  } else {  // v: its own projection, or the raw k projection (k_eq_v); weightless norm, no RoPE
    const int64_t vh = slot - p.heads - p.kv_heads;
    src = src_row + (p.heads + (p.has_v ? p.kv_heads : 0) + vh) * d;
    dst = p.v + (row * p.kv_heads + vh) * d;
    w = nullptr;
    rotate = false;
  }
  // ab[j]: the first half's element lane + 32 j, ab[P + j] its rotate-half partner.
  float ab[2 * P];
  load_chunked(
      ab, p.qkv, p.qkv_chunks, p.qkv_stride, [&](int j) { return src + lane + 32 * (j % P) + (j < P ? 0 : half); },
      [&](int j) { return lane + 32 * (j % P) < half; });
  const float* a = ab;
  const float* b = ab + P;
  // The pairs' (cos, sin) from the step's table, loaded with the inputs (rotated heads only).
  float2 cs[P];
  if (rotate && p.rope_table) {
    const float2* table = p.rope_table + row * half;
#pragma unroll
    for (int j = 0; j < P; ++j)
      if (lane + 32 * j < half) cs[j] = table[lane + 32 * j];
  }
  double ss = 0;
#pragma unroll
  for (int j = 0; j < P; ++j) ss += double(a[j]) * a[j] + double(b[j]) * b[j];
  const float inv = float(1.0 / sqrt(warp_sum(ss) / double(d) + p.eps));
  // The cache slot this k or v head goes to (store_seqs set; kv_store's rule for a one-row sequence).
  void* cache = nullptr;
  int64_t cache_at = 0;
  float divisor = 1.0f;
  if (p.store_seqs && slot >= p.heads) {
    const AttentionSeq& s = p.store_seqs[p.store_row_seq[row]];
    const bool is_k = slot < p.heads + p.kv_heads;
    const int64_t head = is_k ? slot - p.heads : slot - p.heads - p.kv_heads;
    cache = is_k ? s.cache_k : s.cache_v;
    cache_at = (cache_slot(s, s.chunk_start + (row - s.row0)) * p.kv_heads + head) * d;
    divisor = is_k ? p.store_k_scale : 1.0f;
  }
#pragma unroll
  for (int j = 0; j < P; ++j) {
    const int64_t i = lane + 32 * j;
    if (i >= half) break;
    float x1 = __fmul_rn(a[j], inv), x2 = __fmul_rn(b[j], inv);
    if (w) {
      x1 = __fmul_rn(x1, w[i]);
      x2 = __fmul_rn(x2, w[i + half]);
    }
    if (rotate) {
      if (!p.rope_table) cs[j] = rope_cos_sin(p.positions[row], p.inv_freq[i]);
      const float cf = cs[j].x, sf = cs[j].y;
      const float r1 = x1 * cf - x2 * sf, r2 = x2 * cf + x1 * sf;
      x1 = r1;
      x2 = r2;
    }
    dst[i] = x1;
    dst[i + half] = x2;
    if (cache) {
      store_cache_element(cache, cache_at + i, x1, p.store_type, divisor);
      store_cache_element(cache, cache_at + i + half, x2, p.store_type, divisor);
    }
  }
}

// One row per blockIdx.y step, V consecutive columns per thread (V = 4: 16-byte loads where inter allows), no
// per-element index division.
template <int V, bool kBf16>
__global__ void geglu_rows_kernel(GegluRowsParams p) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t groups = p.inter / V;
  const int64_t chunks = p.gate_up_chunks, stride = p.gate_up_stride;
  for (int64_t r = blockIdx.y; r < p.rows; r += gridDim.y) {
    const int64_t gate = r * 2 * p.inter, up = gate + p.inter;  // offsets into gate_up
    for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < groups; c += int64_t(gridDim.x) * blockDim.x) {
      float y[V];
      using T = std::conditional_t<V == 4, float4, float>;
      T gu[2];  // gate values, up values
      load_chunked(
          gu, p.gate_up, chunks, stride, [&](int j) { return (j == 0 ? gate : up) + V * c; }, [](int) { return true; });
      const float* g = reinterpret_cast<const float*>(&gu[0]);
      const float* u = reinterpret_cast<const float*>(&gu[1]);
#pragma unroll
      for (int j = 0; j < V; ++j) y[j] = gelu_tanh(g[j]) * u[j];
      const int64_t at = r * p.inter + c * V;
      if constexpr (kBf16) {
        if constexpr (V == 4) {
          *reinterpret_cast<uint2*>(p.out_bf16 + at) = make_uint2(pack_bf16(y[0], y[1]), pack_bf16(y[2], y[3]));
          if (p.out_lo)
            *reinterpret_cast<uint2*>(p.out_lo + at) = make_uint2(pack_residual(y[0], y[1]), pack_residual(y[2], y[3]));
        } else {
          const Bf16Terms t = bf16_terms(y[0]);
          p.out_bf16[at] = t.hi;
          if (p.out_lo) p.out_lo[at] = t.lo;
        }
      } else {
        if constexpr (V == 4)
          *reinterpret_cast<float4*>(p.out + at) = make_float4(y[0], y[1], y[2], y[3]);
        else
          p.out[at] = y[0];
      }
    }
  }
}

template <int V, bool kBf16>
void launch_geglu(const GegluRowsParams& p, cudaStream_t stream) {
  constexpr int kThreads = 128;
  const int64_t groups = p.inter / V;
  const unsigned x = unsigned(std::min<int64_t>((groups + kThreads - 1) / kThreads, 1024));
  const unsigned y = unsigned(std::min<int64_t>(p.rows, 65535));
  launch_kernel("geglu_rows_kernel", geglu_rows_kernel<V, kBf16>, dim3(x, y), dim3(kThreads), 0, stream, p);
}

// A GEMM's partial outputs as an input: at least one chunk, and chunks that do not overlap.
void require_chunks(const char* op, const char* name, int64_t chunks, int64_t stride, int64_t floats) {
  UG_CUDA_REQUIRE(chunks >= 1 && (chunks == 1 || stride >= floats), op,
                  std::string(name) + ": " + std::to_string(chunks) + " chunks " + std::to_string(stride) +
                      " floats apart (need >= 1 chunk, each of " + std::to_string(floats) + " floats)");
}

}  // namespace

void residual_norm(const ResidualNormParams& p, cudaStream_t stream) {
  const char* op = "residual_norm";
  UG_CUDA_REQUIRE(p.branch && p.h, op, "branch and h must be set");
  UG_CUDA_REQUIRE(p.x != p.h && p.x != p.branch, op, "x may not alias h or branch");
  UG_CUDA_REQUIRE(p.rows >= 1 && p.rows <= 0x7fffffff, op, "rows " + std::to_string(p.rows) + " outside [1, 2^31)");
  UG_CUDA_REQUIRE(p.dim >= 1 && p.dim <= kNormThreads * kNormMaxPerThread, op,
                  "dim " + std::to_string(p.dim) + " outside 1.." + std::to_string(kNormThreads * kNormMaxPerThread));
  UG_CUDA_REQUIRE(p.eps > 0, op, "eps " + std::to_string(p.eps) + " must be > 0");
  require_chunks(op, "branch", p.branch_chunks, p.branch_stride, p.rows * p.dim);
  UG_CUDA_REQUIRE(p.x || !p.x_hi, op, "x_hi needs x");
  UG_CUDA_REQUIRE(p.x_hi || !p.x_lo, op, "x_lo needs x_hi");
  const int64_t per = (p.dim + kNormThreads - 1) / kNormThreads;
  if (per <= 1)
    launch_residual_norm<1>(p, stream);
  else if (per <= 2)
    launch_residual_norm<2>(p, stream);
  else if (per <= 4)
    launch_residual_norm<4>(p, stream);
  else if (per <= 8)
    launch_residual_norm<8>(p, stream);
  else if (per <= 16)
    launch_residual_norm<16>(p, stream);
  else
    launch_residual_norm<32>(p, stream);
}

void qkv_prepare(const QkvPrepareParams& p, cudaStream_t stream) {
  const char* op = "qkv_prepare";
  UG_CUDA_REQUIRE(p.qkv && p.q && p.k && p.v && p.positions && p.inv_freq, op,
                  "qkv, q, k, v, positions and inv_freq must be set");
  UG_CUDA_REQUIRE(p.head_dim >= 2 && p.head_dim % 2 == 0 && p.head_dim <= kQkvMaxHeadDim, op,
                  "head_dim " + std::to_string(p.head_dim) + " must be even, 2.." + std::to_string(kQkvMaxHeadDim));
  UG_CUDA_REQUIRE(p.rows >= 1 && p.heads >= 1 && p.kv_heads >= 1, op,
                  "rows " + std::to_string(p.rows) + ", heads " + std::to_string(p.heads) + ", kv_heads " +
                      std::to_string(p.kv_heads) + " must be >= 1");
  UG_CUDA_REQUIRE(p.eps > 0, op, "eps " + std::to_string(p.eps) + " must be > 0");
  UG_CUDA_REQUIRE(!p.store_seqs || p.store_row_seq, op, "store_row_seq must be set with store_seqs");
  UG_CUDA_REQUIRE(!p.store_seqs || p.store_type != KvType::Fp8 || valid_k_scale(p.store_k_scale), op,
                  "store_k_scale " + std::to_string(p.store_k_scale) + " must be a power of two >= 1");
  require_chunks(op, "qkv", p.qkv_chunks, p.qkv_stride,
                 p.rows * (p.heads + p.kv_heads + (p.has_v ? p.kv_heads : 0)) * p.head_dim);
  const int64_t warps = p.rows * (p.heads + 2 * p.kv_heads);
  UG_CUDA_REQUIRE(warps + kQkvWarps < 0x7fffffff, op,
                  "rows x (heads + 2 kv_heads) " + std::to_string(warps) + " must be < 2^31");
  const int64_t pairs = (p.head_dim / 2 + 31) / 32;
  const auto kernel = pairs <= 1   ? qkv_prepare_kernel<1>
                      : pairs <= 2 ? qkv_prepare_kernel<2>
                      : pairs <= 4 ? qkv_prepare_kernel<4>
                                   : qkv_prepare_kernel<int(kQkvMaxHeadDim / 64)>;
  launch_kernel("qkv_prepare_kernel", kernel, unsigned((warps + kQkvWarps - 1) / kQkvWarps), kQkvWarps * 32, 0, stream,
                p);
}

void geglu_rows(const GegluRowsParams& p, cudaStream_t stream) {
  UG_CUDA_REQUIRE(p.gate_up && (p.out != nullptr) != (p.out_bf16 != nullptr), "geglu_rows",
                  "gate_up and exactly one of out / out_bf16 must be set");
  UG_CUDA_REQUIRE(p.rows >= 1 && p.inter >= 1, "geglu_rows",
                  "rows " + std::to_string(p.rows) + " and inter " + std::to_string(p.inter) + " must be >= 1");
  UG_CUDA_REQUIRE(p.out_bf16 || !p.out_lo, "geglu_rows", "out_lo needs out_bf16");
  require_chunks("geglu_rows", "gate_up", p.gate_up_chunks, p.gate_up_stride, p.rows * 2 * p.inter);
  const auto at16 = [](const void* q) { return reinterpret_cast<uintptr_t>(q) % 16 == 0; };
  const auto at8 = [](const void* q) { return reinterpret_cast<uintptr_t>(q) % 8 == 0; };
  const bool vec = p.inter % 4 == 0 && at16(p.gate_up) && (p.gate_up_chunks == 1 || p.gate_up_stride % 4 == 0) &&
                   (p.out ? at16(p.out) : at8(p.out_bf16) && (!p.out_lo || at8(p.out_lo)));
  if (p.out_bf16)
    vec ? launch_geglu<4, true>(p, stream) : launch_geglu<1, true>(p, stream);
  else
    vec ? launch_geglu<4, false>(p, stream) : launch_geglu<1, false>(p, stream);
}

}  // namespace ug::cuda
