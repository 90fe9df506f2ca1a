// The CUDA implementation of DecoderBackend (model/decoder_backend.h): weights uploaded once
// (DeviceWeights), f32 activations and KV rows in device memory (DeviceKvStorage), one CUDA stream.
// Matmuls with few rows (decode) use the bandwidth-bound gemv on f32 activations; larger ones
// cuBLASLt with the activations rounded to bf16 (backend/cuda/gemm.h says why). Only logits come
// back to the host. An unsupported shape is an error naming it; nothing falls back to the CPU.
#pragma once

#include <memory>

#include "model/config.h"
#include "model/decoder_backend.h"
#include "model/weights.h"

namespace ug {

// How matmuls of more than kGemvMaxRows rows treat the f32 activations (backend/cuda/gemm.h):
// rounded to bf16 (fast, what HF's bf16 model does), or split into two bf16 terms (f32-faithful,
// twice the FLOPs, same weight traffic). The logits always use the split; gemv (<= 8 rows) is
// always f32. Faithful is the default: bf16-rounded activations in every layer GEMM put the tiny
// fixture model 0.13 off HF's f32-compute logits (the issue allows 5e-2); the split keeps it at
// 2e-4.
enum class MatmulPrecision {
  Faithful,  // split everywhere (prefill at half the tensor-core rate)
  Balanced,  // split up to split_max_rows rows (decode batches: memory-bound, so free), bf16 above
             // (prefill)
  Fast,      // bf16 everywhere except the logits (like HF's bf16 model)
};

struct CudaBackendOptions {
  int device = 0;                      // CUDA device ordinal
  int64_t max_attention_splits = 128;  // flash-decoding: key splits per (query, head)
  MatmulPrecision precision = MatmulPrecision::Balanced;
  int64_t split_max_rows = 64;
  // CUDA graphs for decode steps that need only argmaxes / top-k candidates (one launch instead of ~1,000);
  // UNIGEMMA_CUDA_GRAPHS=0 turns them off.
  bool graphs = true;
  // KV cache in fp8 (e4m3; keys divided by a per-layer power of two from the k_norm weights): half the bytes of
  // bf16, so twice the sequences or context in a KV budget; keys and values carry 3 mantissa bits, and decode is
  // not faster yet (docs/perf.md). Attention runs as AttentionMode::ExactFp8Kv. Not with the faithful precision.
  bool fp8_kv = false;
};

// Throws ug::Error when no CUDA device is usable or the weights do not fit.
std::unique_ptr<DecoderBackend> make_cuda_decoder_backend(const ModelConfig& config, const ModelWeights& weights,
                                                          const CudaBackendOptions& options = {});

// True when this build has the CUDA backend and a device is usable.
bool cuda_backend_available();

}  // namespace ug
