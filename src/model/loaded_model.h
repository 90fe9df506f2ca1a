// A checkpoint folder opened for inference: config.json, generation_config.json, the mapped tensors
// and the weights bound to them.
#pragma once

#include <memory>
#include <string>

#include "io/checkpoint.h"
#include "model/config.h"
#include "model/weights.h"

namespace ug {

struct LoadedModel {
  std::string dir;
  ModelConfig config;
  GenerationConfig generation;
  std::unique_ptr<Checkpoint> checkpoint;
  std::unique_ptr<ModelWeights> weights;
};

// How to hold the weights: Auto copies them into huge-page memory when the checkpoint takes less than
// 60% of the memory available now (faster CPU decode), else maps them in place.
enum class LoadMode { Auto, Mmap, Copy };
LoadMode parse_load_mode(const std::string& name);  // "auto" | "mmap" | "copy"
WeightResidency resolve_residency(LoadMode mode, size_t checkpoint_bytes);

// Opens DIR (a HF checkpoint folder) and validates every tensor against config.json. Touches only
// headers and small vectors; large matrices page in on first use.
std::unique_ptr<LoadedModel> load_model(const std::string& dir, const WeightLoadOptions& options = {},
                                        LoadMode mode = LoadMode::Mmap);

}  // namespace ug
