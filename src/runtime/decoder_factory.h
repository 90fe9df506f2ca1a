// Where the decoder computes: "cpu" (default) or "cuda" / "cuda:N". The one place that knows which
// backends this build has.
#pragma once

#include <memory>
#include <string>

#include "core/thread_pool.h"
#include "model/decoder.h"
#include "model/embedders.h"

namespace ug {

struct DeviceSpec {
  enum class Kind { Cpu, Cuda } kind = Kind::Cpu;
  int ordinal = 0;  // CUDA device
  // CUDA numerics (model_cuda/cuda_decoder_backend.h): "balanced" (default), "faithful" or "fast".
  std::string precision = "balanced";
  // KV cache element type: "auto" (what the precision needs: bf16, f32 when faithful) or "fp8" (e4m3, CUDA only).
  std::string kv_cache = "auto";
};

// "cpu", "cuda", "cuda:N"; anything else is an error naming the accepted forms.
DeviceSpec parse_device(const std::string& text);
std::string to_string(const DeviceSpec& d);

// Throws ug::Error when the build lacks the backend ("configure with -DUNIGEMMA_CUDA=ON") or no
// device is usable.
std::unique_ptr<Decoder> make_decoder(const DeviceSpec& device, const ModelConfig& config, const ModelWeights& weights,
                                      ThreadPool& pool, DecoderOptions options = {});

// Where images and audio are embedded next to that decoder: the CPU embedders on `pool`, or the GPU's
// (model_cuda/cuda_media_embedder.h). Same errors as make_decoder for a missing backend.
std::unique_ptr<MediaEmbedder> make_media_embedder(const DeviceSpec& device, const ModelConfig& config,
                                                   const ModelWeights& weights, ThreadPool& pool);

// True when this binary was built with the CUDA backend.
bool built_with_cuda();

}  // namespace ug
