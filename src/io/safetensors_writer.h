// Streaming safetensors writer: tensors are declared up front and their bytes produced in chunks
// by a callback, so checkpoints larger than RAM (the 24 GB 12B shape) can be written.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace ug {

struct TensorToWrite {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  // Fills `out` with bytes [offset, offset + out.size()) of this tensor's data. Called with chunks
  // of <= 64 MiB, in increasing offset order, tensor after tensor.
  std::function<void(size_t offset, std::span<std::byte> out)> fill;
};

// Writes one safetensors file. Data is laid out contiguously, larger dtypes first (stable within a
// dtype size, like HF) so every tensor is aligned to its element size; the header is padded with
// spaces to 8 bytes. Writes `path + ".tmp"` and renames it at the end, so an interrupted write
// never leaves a file that looks complete. Throws ug::Error naming the file (bad shape, duplicate
// name, disk full, ...).
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// HF-style checkpoint folder (created if needed): a single model.safetensors when the data fits in
// max_shard_bytes, else model-0000K-of-0000N.safetensors shards (filled greedily in the given
// order; a tensor larger than the limit gets a shard of its own) plus model.safetensors.index.json
// with metadata.total_size and weight_map. A stale file of the other layout is removed so it cannot
// shadow the new one. Returns the written paths (shards first, then the index).
std::vector<std::string> write_sharded_checkpoint(const std::string& dir,
                                                  const std::vector<TensorToWrite>& tensors,
                                                  size_t max_shard_bytes = size_t(5) << 30);

}  // namespace ug
