// A decode-shaped matmul on Hopper's warpgroup MMA: y = x[m, k] · w[n, k]ᵀ for few token rows (m <= 64) against
// a large bf16 weight: the decode steps' products, which stream the weight once and do m multiply-adds per weight
// element. Same operands as Gemm's cuBLASLt path (gemm.h), and like it leaves k slices as chunks to sum.
//
// The weight is the wgmma's A (64 rows per instruction, 256 per block), the activations its B (N = m rounded up to
// 16 / 32 / 64): the token rows never fill a 64-row A. One thread streams 64-column blocks of both into shared
// memory by TMA (4 stages, 128-byte swizzle; the weight's first stages are asked for before the previous kernel has
// finished, programmatic dependent launch), two consumer warpgroups issue the MMAs. Two-term activations (hi, lo)
// are summed in the accumulators. A product with few weight tiles runs as k slices (blocks over k ranges, to fill
// the SMs), each writing its own [m, n] chunk of y; the next kernel sums the chunks in order as it loads them
// (F32Chunks). Summing them here lost (docs/perf.md, session 18): the last block of each tile read every slice back
// alone, a tail as long as the o projection itself.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace ug::cuda {

struct DecodeGemmParams {
  const uint16_t* w = nullptr;  // [n, k] bf16, row-major, 16-byte aligned
  const uint16_t* x = nullptr;  // [terms x m, k] bf16, row-major, 16-byte aligned: term t's rows from t x m
  float* y = nullptr;           // [slices, m, n] f32, overwritten: slice s's product over its k range, terms summed
  int64_t m = 0;                // token rows, 1 .. 64
  int64_t n = 0;                // a multiple of 256
  int64_t k = 0;                // a multiple of 64 x slices
  int64_t slices = 1;
  int terms = 1;  // 2: x holds two-term activations (hi rows, then lo rows: GemmChunksParams::split), summed in the
                  // accumulators
};

// Whether decode_gemm takes the shape (and the device runs sm_90a code).
bool decode_gemm_supports(int64_t m, int64_t n, int64_t k, int64_t slices);

// The k slices decode_gemm is run with for an m x n x k product: the most that keep the blocks (n / 256 x slices)
// within one wave of 132 SMs, each slice at least 4 blocks of 64 columns (the stages of its pipeline).
int64_t decode_gemm_slices(int64_t m, int64_t n, int64_t k);

void decode_gemm(const DecodeGemmParams& p, cudaStream_t stream = nullptr);

}  // namespace ug::cuda
