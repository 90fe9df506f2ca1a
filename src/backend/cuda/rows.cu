// Row-wise data movement of a decoder step: token embeddings (+ multimodal overrides), KV appends, gathers.
#include <cuda_bf16.h>

#include <algorithm>
#include <string>

#include "backend/cuda/attention.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kv_fp8.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/ops.h"

namespace ug::cuda {
namespace {

constexpr int kThreads = 256;

unsigned blocks_for(int64_t n) { return unsigned(std::min<int64_t>((n + kThreads - 1) / kThreads, 132 * 32)); }

__global__ void embed_kernel(EmbedParams p) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t total = p.rows * p.dim;
  for (int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x; i < total; i += int64_t(gridDim.x) * kThreads) {
    const int64_t r = i / p.dim, c = i % p.dim;
    const int32_t o = p.override_index ? p.override_index[r] : -1;
    if (o >= 0) {
      p.out[i] = p.overrides[o * p.dim + c];
    } else {
      const uint32_t bits = uint32_t(p.table[int64_t(p.tokens[r]) * p.dim + c]) << 16;
      p.out[i] = __uint_as_float(bits) * p.scale;
    }
  }
}

__global__ void kv_store_kernel(KvStoreParams p) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t total = p.rows * p.row_size;
  for (int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x; i < total; i += int64_t(gridDim.x) * kThreads) {
    const int64_t r = i / p.row_size, c = i % p.row_size;
    const AttentionSeq& s = p.seqs[p.row_seq[r]];
    const int64_t t = r - s.row0, pos = s.chunk_start + t;
    if (s.ring_capacity > 0 && t < s.n_rows - s.ring_capacity) continue;  // overwritten by a later row of the chunk
    const int64_t slot = cache_slot(s, pos);
    store_cache_element(s.cache_k, slot * p.row_size + c, p.k[i], p.type, p.k_scale);
    store_cache_element(s.cache_v, slot * p.row_size + c, p.v[i], p.type, 1.0f);
  }
}

__global__ void gather_rows_kernel(GatherRowsParams p) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t total = p.count * p.dim;
  for (int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x; i < total; i += int64_t(gridDim.x) * kThreads)
    p.dst[i] = p.src[int64_t(p.index[i / p.dim]) * p.dim + i % p.dim];
}

__global__ void add_scaled_kernel(AddScaledParams p) {
  pdl_launch_dependents();
  pdl_wait();
  for (int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x; i < p.n; i += int64_t(gridDim.x) * kThreads)
    p.h[i] = p.scale == 1.0f ? p.h[i] + p.branch[i] : (p.h[i] + p.branch[i]) * p.scale;
}

constexpr int kArgmaxThreads = 1024;

__device__ bool better(float v, int32_t i, float bv, int32_t bi) { return v > bv || (v == bv && i < bi); }

__global__ void __launch_bounds__(kArgmaxThreads) argmax_rows_kernel(ArgmaxRowsParams p) {
  pdl_launch_dependents();
  pdl_wait();
  __shared__ float vals[kArgmaxThreads];
  __shared__ int32_t ids[kArgmaxThreads];
  __shared__ int32_t excluded[kArgmaxMaxExcluded];
  __shared__ int n_excluded, bad;
  const float* x = p.x + int64_t(blockIdx.x) * p.n;
  if (threadIdx.x == 0) {
    n_excluded = p.excluded_at ? p.excluded_at[blockIdx.x + 1] - p.excluded_at[blockIdx.x] : 0;
    bad = 0;
  }
  __syncthreads();
  for (int i = int(threadIdx.x); i < n_excluded; i += kArgmaxThreads)
    excluded[i] = p.excluded_ids[p.excluded_at[blockIdx.x] + i];
  __syncthreads();
  float bv = -INFINITY;
  int32_t bi = 0x7fffffff;
  for (int64_t i = threadIdx.x; i < p.n; i += kArgmaxThreads) {
    bool skip = false;
    for (int e = 0; e < n_excluded; ++e) skip = skip || excluded[e] == int32_t(i);
    if (skip) continue;
    if (isnan(x[i]) || x[i] == INFINITY) bad = 1;
    if (better(x[i], int32_t(i), bv, bi)) {
      bv = x[i];
      bi = int32_t(i);
    }
  }
  vals[threadIdx.x] = bv;
  ids[threadIdx.x] = bi;
  __syncthreads();
  for (int half = kArgmaxThreads / 2; half > 0; half >>= 1) {
    if (int(threadIdx.x) < half &&
        better(vals[threadIdx.x + half], ids[threadIdx.x + half], vals[threadIdx.x], ids[threadIdx.x])) {
      vals[threadIdx.x] = vals[threadIdx.x + half];
      ids[threadIdx.x] = ids[threadIdx.x + half];
    }
    __syncthreads();
  }
  // all -inf (or excluded): id 0, as the CPU; a NaN / +inf logit: -1
  if (threadIdx.x == 0) p.out[blockIdx.x] = bad ? -1 : ids[0] == 0x7fffffff ? 0 : ids[0];
}

}  // namespace

void argmax_rows(const ArgmaxRowsParams& p, cudaStream_t stream) {
  UG_CUDA_REQUIRE(p.x && p.out, "argmax_rows", "x and out must be set");
  UG_CUDA_REQUIRE(p.rows >= 1 && p.rows < 0x7fffffff && p.n >= 1 && p.n < 0x7fffffff, "argmax_rows",
                  "rows " + std::to_string(p.rows) + " / n " + std::to_string(p.n) + " out of range");
  UG_CUDA_REQUIRE(p.max_excluded >= 0 && p.max_excluded <= kArgmaxMaxExcluded && (p.max_excluded == 0 || p.excluded_at),
                  "argmax_rows",
                  "excluded ids per row " + std::to_string(p.max_excluded) + " exceed " +
                      std::to_string(kArgmaxMaxExcluded) + " (or excluded_at is not set)");
  launch_kernel("argmax_rows_kernel", argmax_rows_kernel, unsigned(p.rows), kArgmaxThreads, 0, stream, p);
}

void embed(const EmbedParams& p, cudaStream_t stream) {
  UG_CUDA_REQUIRE(p.table && p.tokens && p.out, "embed", "table, tokens and out must be set");
  UG_CUDA_REQUIRE(!p.override_index || p.overrides, "embed", "override_index needs overrides");
  UG_CUDA_REQUIRE(p.rows >= 1 && p.dim >= 1, "embed", "rows and dim must be >= 1");
  launch_kernel("embed_kernel", embed_kernel, blocks_for(p.rows * p.dim), kThreads, 0, stream, p);
}

void kv_store(const KvStoreParams& p, cudaStream_t stream) {
  UG_CUDA_REQUIRE(p.k && p.v && p.seqs && p.row_seq, "kv_store", "k, v, seqs and row_seq must be set");
  UG_CUDA_REQUIRE(p.rows >= 1 && p.row_size >= 1, "kv_store", "rows and row_size must be >= 1");
  UG_CUDA_REQUIRE(p.type != KvType::Fp8 || valid_k_scale(p.k_scale), "kv_store",
                  "k_scale " + std::to_string(p.k_scale) + " must be a power of two >= 1");
  launch_kernel("kv_store_kernel", kv_store_kernel, blocks_for(p.rows * p.row_size), kThreads, 0, stream, p);
}

void gather_rows(const GatherRowsParams& p, cudaStream_t stream) {
  UG_CUDA_REQUIRE(p.src && p.index && p.dst, "gather_rows", "src, index and dst must be set");
  UG_CUDA_REQUIRE(p.count >= 1 && p.dim >= 1, "gather_rows", "count and dim must be >= 1");
  launch_kernel("gather_rows_kernel", gather_rows_kernel, blocks_for(p.count * p.dim), kThreads, 0, stream, p);
}

void add_scaled(const AddScaledParams& p, cudaStream_t stream) {
  UG_CUDA_REQUIRE(p.h && p.branch, "add_scaled", "h and branch must be set");
  UG_CUDA_REQUIRE(p.n >= 1, "add_scaled", "n " + std::to_string(p.n) + " must be >= 1");
  launch_kernel("add_scaled_kernel", add_scaled_kernel, blocks_for(p.n), kThreads, 0, stream, p);
}

}  // namespace ug::cuda
