// Writes a random-weight HF checkpoint folder for a config: config.json, generation_config.json and
// safetensors shards named and shaped exactly like the published checkpoint. Values are a pure function
// of (seed, tensor name, element index), so any chunk can be generated independently and in parallel,
// and the writer streams: a 24 GB checkpoint needs no more than one chunk of memory.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "core/dtype.h"
#include "core/thread_pool.h"

namespace ug {

struct RandomCheckpointOptions {
  uint64_t seed = 0;
  DType dtype = DType::BF16;                 // BF16 or F32
  size_t max_shard_bytes = size_t(5) << 30;  // HF's default shard size
};

// Returns the total bytes of tensor data written.
size_t write_random_checkpoint(const std::string& dir, const nlohmann::json& config,
                               const nlohmann::json& generation_config, const RandomCheckpointOptions& options,
                               ThreadPool& pool);

}  // namespace ug
