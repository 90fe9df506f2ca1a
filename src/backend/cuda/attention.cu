// Attention kernels (see attention.h): a warp per (row, head, split) with an online softmax, plus the merge
// of split partials.
#include <algorithm>
#include <string>

#include "backend/cuda/attention.h"
#include "backend/cuda/cuda_check.h"

namespace ug::cuda {
namespace {

constexpr int kWarpsPerBlock = 4;
constexpr int64_t kWarpsToFill = 132 * 48;  // enough resident warps to hide memory latency on an H100/H200

__device__ float warp_sum(float v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// Row of key / value `pos` of kv head `kvh`: the step's fresh rows for positions of the chunk, else the cache.
__device__ const float* kv_row(const AttentionSeq& s, const float* cache, const float* fresh, int64_t pos, int64_t kvh,
                               int64_t stride, int64_t d) {
  if (pos >= s.chunk_start) return fresh + (s.row0 + pos - s.chunk_start) * stride + kvh * d;
  const int64_t slot = s.ring_capacity > 0 ? pos % s.ring_capacity : pos;
  return cache + slot * stride + kvh * d;
}

// EPL: head-dim elements per lane (lane owns elements lane + 32 j).
template <int EPL>
__global__ void __launch_bounds__(kWarpsPerBlock * 32) attention_kernel(AttentionParams p, int64_t splits) {
  const int64_t task = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = int(threadIdx.x % 32);
  if (task >= p.rows * p.n_heads * splits) return;
  const int64_t split = task % splits, rh = task / splits;
  const int64_t head = rh % p.n_heads, row = rh / p.n_heads;
  const AttentionSeq s = p.seqs[p.row_seq[row]];
  const int64_t qpos = s.chunk_start + (row - s.row0);
  int64_t first = 0, last = qpos;
  if (p.window > 0) first = qpos - p.window + 1 > 0 ? qpos - p.window + 1 : 0;
  if (p.window > 0 && p.block_last && p.block_last[row] >= 0) last = s.chunk_start + (p.block_last[row] - s.row0);
  const int64_t per = (last - first + 1 + splits - 1) / splits;
  const int64_t lo = first + split * per, hi = lo + per < last + 1 ? lo + per : last + 1;

  const int64_t d = p.head_dim, stride = p.n_kv_heads * d, kvh = head / (p.n_heads / p.n_kv_heads);
  float q[EPL], acc[EPL];
  const float* qr = p.q + (row * p.n_heads + head) * d;
#pragma unroll
  for (int j = 0; j < EPL; ++j) {
    const int64_t idx = lane + 32 * j;
    q[j] = idx < d ? qr[idx] : 0.0f;
    acc[j] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  for (int64_t pos = lo; pos < hi; ++pos) {
    const float* kr = kv_row(s, s.cache_k, p.k, pos, kvh, stride, d);
    float part = 0.0f;
#pragma unroll
    for (int j = 0; j < EPL; ++j) {
      const int64_t idx = lane + 32 * j;
      if (idx < d) part += q[j] * kr[idx];
    }
    const float score = warp_sum(part) * p.scale;
    const float m_new = fmaxf(m, score);
    const float corr = expf(m - m_new), w = expf(score - m_new);
    l = l * corr + w;
    const float* vr = kv_row(s, s.cache_v, p.v, pos, kvh, stride, d);
#pragma unroll
    for (int j = 0; j < EPL; ++j) {
      const int64_t idx = lane + 32 * j;
      if (idx < d) acc[j] = acc[j] * corr + w * vr[idx];
    }
    m = m_new;
  }
  if (splits == 1) {
    float* out = p.out + (row * p.n_heads + head) * d;
    const float inv = 1.0f / l;
#pragma unroll
    for (int j = 0; j < EPL; ++j) {
      const int64_t idx = lane + 32 * j;
      if (idx < d) out[idx] = acc[j] * inv;
    }
    return;
  }
  float* part = p.partial + task * (d + 2);  // [m, l, acc[d]]
  if (lane == 0) {
    part[0] = m;
    part[1] = l;
  }
#pragma unroll
  for (int j = 0; j < EPL; ++j) {
    const int64_t idx = lane + 32 * j;
    if (idx < d) part[2 + idx] = acc[j];
  }
}

// One warp per (row, head): out = sum_i acc_i e^(m_i - M) / sum_i l_i e^(m_i - M).
__global__ void __launch_bounds__(kWarpsPerBlock * 32) merge_kernel(AttentionParams p, int64_t splits) {
  const int64_t rh = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = int(threadIdx.x % 32);
  if (rh >= p.rows * p.n_heads) return;
  const int64_t d = p.head_dim;
  const float* parts = p.partial + rh * splits * (d + 2);
  float big = -INFINITY;
  for (int64_t i = 0; i < splits; ++i) big = fmaxf(big, parts[i * (d + 2)]);
  float total = 0.0f;
  for (int64_t i = 0; i < splits; ++i) {
    const float mi = parts[i * (d + 2)];
    if (mi != -INFINITY) total += parts[i * (d + 2) + 1] * expf(mi - big);
  }
  const float inv = 1.0f / total;
  float* out = p.out + rh * d;
  for (int64_t idx = lane; idx < d; idx += 32) {
    float sum = 0.0f;
    for (int64_t i = 0; i < splits; ++i) {
      const float mi = parts[i * (d + 2)];
      if (mi != -INFINITY) sum += parts[i * (d + 2) + 2 + idx] * expf(mi - big);
    }
    out[idx] = sum * inv;
  }
}

// Splits only when rows x heads leave the chip idle (decode): prefill chunks never split, so their scratch is 0.
int64_t splits_for(int64_t rows, int64_t n_heads, int64_t max_keys, int64_t max_splits) {
  const int64_t base = std::max<int64_t>(1, rows * n_heads);
  int64_t s = std::min<int64_t>(max_splits, std::max<int64_t>(1, kWarpsToFill / base));
  s = std::min<int64_t>(s, std::max<int64_t>(1, max_keys / 16));  // at least 16 keys per split
  return std::max<int64_t>(s, 1);
}

template <int EPL>
void launch(const AttentionParams& p, int64_t splits, cudaStream_t stream) {
  const int64_t warps = p.rows * p.n_heads * splits;
  attention_kernel<EPL>
      <<<unsigned((warps + kWarpsPerBlock - 1) / kWarpsPerBlock), kWarpsPerBlock * 32, 0, stream>>>(p, splits);
  UG_CUDA_CHECK_LAUNCH("attention_kernel");
}

}  // namespace

int64_t attention_partial_floats(int64_t rows, int64_t n_heads, int64_t head_dim, int64_t max_keys,
                                 int64_t max_splits) {
  const int64_t splits = splits_for(rows, n_heads, max_keys, max_splits);
  return splits > 1 ? rows * n_heads * splits * (head_dim + 2) : 0;
}

void attention(const AttentionParams& p, cudaStream_t stream) {
  const char* op = "attention";
  UG_CUDA_REQUIRE(p.q && p.k && p.v && p.out && p.seqs && p.row_seq, op, "q, k, v, out, seqs and row_seq must be set");
  UG_CUDA_REQUIRE(p.rows >= 1 && p.n_seqs >= 1, op,
                  "rows " + std::to_string(p.rows) + " and n_seqs " + std::to_string(p.n_seqs) + " must be >= 1");
  UG_CUDA_REQUIRE(
      p.n_kv_heads >= 1 && p.n_heads >= p.n_kv_heads && p.n_heads % p.n_kv_heads == 0, op,
      "n_heads " + std::to_string(p.n_heads) + " must be a multiple of n_kv_heads " + std::to_string(p.n_kv_heads));
  UG_CUDA_REQUIRE(p.head_dim >= 1 && p.head_dim <= 512, op,
                  "head_dim " + std::to_string(p.head_dim) + " is outside the supported 1..512");
  UG_CUDA_REQUIRE(p.window >= 0 && p.max_keys >= 1 && p.max_splits >= 1, op,
                  "window must be >= 0, max_keys and max_splits >= 1");
  const int64_t splits = splits_for(p.rows, p.n_heads, p.max_keys, p.max_splits);
  UG_CUDA_REQUIRE(splits == 1 || p.partial, op, "partial scratch must be set when max_splits > 1");
  const int64_t d = p.head_dim;
  if (d <= 32)
    launch<1>(p, splits, stream);
  else if (d <= 64)
    launch<2>(p, splits, stream);
  else if (d <= 128)
    launch<4>(p, splits, stream);
  else if (d <= 256)
    launch<8>(p, splits, stream);
  else
    launch<16>(p, splits, stream);
  if (splits > 1) {
    const int64_t warps = p.rows * p.n_heads;
    merge_kernel<<<unsigned((warps + kWarpsPerBlock - 1) / kWarpsPerBlock), kWarpsPerBlock * 32, 0, stream>>>(p,
                                                                                                              splits);
    UG_CUDA_CHECK_LAUNCH("attention merge_kernel");
  }
}

}  // namespace ug::cuda
