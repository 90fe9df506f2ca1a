// The CUDA matmul entry: y[m, n] = x[m, k] · wᵀ with w a bf16 weight [n, k] stored row-major
// exactly as the CPU's MatrixRef holds it (PyTorch Linear [out, in]), through cuBLASLt with bf16
// operands and f32 accumulation / f32 output.
//
// Why bf16 activations: cuBLASLt's f32-compute matmul takes A and B of one type (bf16 x bf16, f16 x
// f16, f32 x f32; only the fp8 kinds mix), so there is no f32-activation x bf16-weight tensor-core
// path. The choices are widening the weight to f32 (twice the bytes of the one thing decode
// streams, and f32/tf32 math) or rounding the activations to bf16 once per call, which is what the
// HF BF16 reference does anyway (spec §3: every Linear input is a BF16 tensor). run_f32() does that
// rounding with to_bf16 (round to nearest even, like ug::f32_to_bf16). Products of two bf16 values
// are exact in f32, so the result differs from the CPU oracle on the same bf16-rounded inputs only
// by f32 summation order.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/cuda/ops.h"

namespace ug::cuda {

struct GemmParams {
  const uint16_t* w = nullptr;  // [n, k] bf16 weight, row-major (device memory, 16-byte aligned)
  const uint16_t* x = nullptr;  // [m, k] bf16 activations, row-major (device memory, 16-byte aligned)
  float* y = nullptr;           // [m, n] f32 output, row-major, overwritten (device, 16-byte aligned)
  int64_t m = 0;                // tokens, >= 1
  int64_t n = 0;                // output features (weight rows), >= 1
  int64_t k = 0;                // input features, >= 8 and a multiple of 8 (16-byte bf16 rows)
};

struct GemmF32Params {
  const uint16_t* w = nullptr;  // [n, k] bf16 weight, row-major (as GemmParams)
  const float* x = nullptr;     // [m, k] f32 activations; rounded to bf16 (scratch) before the product
  float* y = nullptr;           // [m, n] f32 output, must not overlap x
  int64_t m = 0;                // as GemmParams
  int64_t n = 0;
  int64_t k = 0;
  // false: x rounded to bf16 (relative error 2^-9 per activation). true: x split into two bf16
  // terms hi = bf16(x), lo = bf16(x - hi) run as one GEMM over 2m rows and summed, so the product
  // is f32-faithful
  // (~2^-17 relative) at twice the FLOPs but the same weight traffic: free where the GEMM is
  // memory-bound (decode batches), and what the logits need (HF computes them from f32 hidden
  // states).
  bool split = false;
  // k slices: the product runs as that many GEMMs over k ranges in one batched call, summed after (in a fixed
  // order: deterministic). A decode-sized product with few output tiles (n 3,840 at 128 rows is 30 tiles for 132
  // SMs) otherwise leaves most of the chip idle while it streams the weight. 0: chosen from the shape (more tiles
  // than ~2 per SM: 1); else k must be a multiple of 8 x k_slices.
  int64_t k_slices = 0;
};

// A product whose output stays as partial chunks for the kernel that reads it (F32Chunks, ops.h), and whose input
// may come already rounded by the kernel that wrote it.
struct GemmChunksParams {
  const uint16_t* w = nullptr;       // [n, k] bf16 weight, row-major (as GemmParams)
  const float* x = nullptr;          // [m, k] f32 activations, rounded or split here (as GemmF32Params), or:
  const uint16_t* x_bf16 = nullptr;  // the same already in bf16: [m, k], or [2m, k] when split (hi rows = bf16(x),
                                     // then lo rows = bf16(x - hi)). Exactly one of x and x_bf16; 16-byte aligned.
  int64_t m = 0;                     // as GemmF32Params
  int64_t n = 0;
  int64_t k = 0;
  bool split = false;
  int64_t k_slices = 0;
};

// Products whose shape decode_gemm takes (gemm_decode.h: n a multiple of 256, k of 64 x its slices, an sm_90a
// device), when the caller leaves k_slices to the Gemm and they have at most decode_rows() token rows (64 by
// default), run on that wgmma kernel, split terms summed in it (run_chunks then returns one chunk per k slice).
// docs/perf.md has the measurements behind the defaults.
//
// Owns the cuBLASLt handle, a workspace and the per-shape plans (descriptors + the heuristic's
// first algorithm, or a kept tuned one: use_tuning_file; chosen once per (m, n, k) and reused). Not thread-safe:
// one Gemm per stream / thread.
class Gemm {
 public:
  Gemm();  // on the current device
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  void run(const GemmParams& p, cudaStream_t stream = nullptr);
  void run_f32(const GemmF32Params& p, cudaStream_t stream = nullptr);
  // The product's partial outputs ([slices][hi rows, lo rows][n], each chunk m x n), left unsummed in this Gemm's
  // buffer: valid until its next run, run_f32 or run_chunks on any stream.
  F32Chunks run_chunks(const GemmChunksParams& p, cudaStream_t stream = nullptr);
  // The k slices run_f32 takes for an m x n x k product (m: the rows cuBLASLt sees, 2x for a split) when not told.
  static int64_t auto_k_slices(int64_t m, int64_t n, int64_t k);
  // The most token rows a product may have to run on decode_gemm: knob UG_GEMM_DECODE_ROWS (0: never, at most 64),
  // default 64.
  static int64_t decode_rows();
  // Whether an m x n x k product with k_slices (0: chosen here) runs on decode_gemm, and the chunks run_chunks
  // then returns for it (split or not).
  static bool takes_decode_gemm(int64_t m, int64_t n, int64_t k, int64_t k_slices);
  static int64_t chunks_of(int64_t m, int64_t n, int64_t k, bool split, int64_t k_slices);
  // Keeps cuBLASLt's choice for products of at least kTunedRows rows in a file (gemm_tuning_file.h): the
  // heuristic's first kTunedCandidates algorithms are timed once per GPU and shape class, and the fastest is kept
  // when it beats the heuristic's own first choice by kTunedMargin; later products of that class (and later
  // starts) read the choice. Measured +1-2% at prefill (docs/perf.md, session 19). Empty path (the default): no
  // tuning, the heuristic's first choice. Returns what reading the file found wrong (skipped lines).
  std::vector<std::string> use_tuning_file(const std::string& path);
  static constexpr int64_t kTunedRows = 1024;
  static constexpr int kTunedCandidates = 8;
  static constexpr double kTunedMargin = 0.03;
  size_t cached_plans() const;  // shapes planned so far (for tests)
  // Reallocations of the internal activation buffers so far (a captured CUDA graph holds their addresses).
  uint64_t allocations() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ug::cuda
