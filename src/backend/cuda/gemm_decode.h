// A decode-shaped matmul on Hopper's warpgroup MMA: y[s][m, n] = x[m, k_s] · w[n, k_s]ᵀ over k slices s, for few
// token rows (m <= 64) against a large bf16 weight: the decode steps' products, which stream the weight once and
// do m multiply-adds per weight element. Same operands and output chunks as Gemm's cuBLASLt path (gemm.h).
//
// The weight is the wgmma's A (64 rows per instruction, 256 per block), the activations its B (N = m rounded up to
// 16 / 32 / 64): the token rows never fill a 64-row A. A producer warp streams 64-column blocks of both into shared
// memory by cp.async (4 stages, 128-byte swizzle), two consumer warpgroups issue the MMAs. Two-term activations
// (hi, lo) are summed in the accumulators. Measured on the H200 (docs/perf.md): faster than cuBLASLt at 4-16 rows
// (+2% per decode step), slower at 32 (-2.5%) and 64 (-23%: each block re-reads the activations, half the weight's
// bytes at 64 rows of two terms), so Gemm routes at most 16 rows here.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace ug::cuda {

struct DecodeGemmParams {
  const uint16_t* w = nullptr;  // [n, k] bf16, row-major, 16-byte aligned
  const uint16_t* x = nullptr;  // [terms x m, k] bf16, row-major, 16-byte aligned: term t's rows from t x m
  float* y = nullptr;           // [slices][m][n] f32: slice s holds the product over k range s, terms summed
  int64_t m = 0;                // token rows, 1 .. 64
  int64_t n = 0;                // a multiple of 256
  int64_t k = 0;                // a multiple of 64 x slices
  int64_t slices = 1;
  int terms = 1;  // 2: x holds two-term activations (hi rows, then lo rows: GemmChunksParams::split), summed in the
                  // accumulators (one output chunk per slice instead of two)
};

// Whether decode_gemm takes the shape (and the device runs sm_90a code).
bool decode_gemm_supports(int64_t m, int64_t n, int64_t k, int64_t slices);

// The k slices decode_gemm is run with for an m x n x k product: the most (a power of two, <= 16) that keep the
// blocks within one wave of 132 SMs and the partial outputs' traffic (8 bytes per output per slice) within half the
// weight's bytes.
int64_t decode_gemm_slices(int64_t m, int64_t n, int64_t k);

void decode_gemm(const DecodeGemmParams& p, cudaStream_t stream = nullptr);

}  // namespace ug::cuda
