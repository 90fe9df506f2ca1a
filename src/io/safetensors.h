// Reading safetensors files: header parsing/validation and a memory-mapped file whose tensors point
// straight into the mapping (weights are never copied; only the JSON header is read at open).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/mapped_file.h"

namespace ug {

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const std::byte* data = nullptr;  // into the mapping (or the buffer given to parse_safetensors)
  size_t nbytes = 0;
  std::string file;  // path of the shard, for error messages
  int64_t numel() const;
};

struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;  // sorted by name
  std::map<std::string, std::string> metadata;
  size_t data_offset = 0;  // start of the data buffer in the file (8 + header length)
};

// Parses and validates the header of a whole safetensors file held in memory. Reads only the first
// 8 + header-length bytes; tensor data is never touched. Throws ug::Error naming the file and
// tensor.
SafetensorsHeader parse_safetensors(const std::byte* file_data, size_t file_size,
                                    const std::string& path_for_errors);

// One memory-mapped safetensors file.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);

  const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  const std::string& path() const { return file_.path(); }
  const MappedFile& mapping() const { return file_; }
  size_t data_offset() const { return header_.data_offset; }

 private:
  MappedFile file_;
  SafetensorsHeader header_;
};

}  // namespace ug
