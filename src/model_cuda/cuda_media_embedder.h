// The multimodal embedders (model/embedders.h) on a CUDA device: the same math as embed_image / embed_audio (their
// oracles), with the projections as cuBLASLt GEMMs over bf16 weights on two-term split activations (f32-faithful)
// and the LayerNorms / RMSNorm as CUDA kernels. A 280-patch image of the 12B is ~23 GFLOP: tens of milliseconds
// on a CPU, well under one on the GPU. Weights are uploaded once (the 12B's vision weights: ~120 MB).
#pragma once

#include <memory>

#include "model/config.h"
#include "model/embedders.h"
#include "model/weights.h"

namespace ug {

// Throws ug::Error when no CUDA device is usable. config and weights must outlive it.
std::unique_ptr<MediaEmbedder> make_cuda_media_embedder(const ModelConfig& config, const ModelWeights& weights,
                                                        int device = 0);

}  // namespace ug
