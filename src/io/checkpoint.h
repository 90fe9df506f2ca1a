// A checkpoint folder as Hugging Face writes it: model.safetensors, or
// model.safetensors.index.json + shards, or a lone *.safetensors. All files are memory-mapped;
// opening validates every header but touches no tensor data.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/safetensors.h"

namespace ug {

class Checkpoint {
 public:
  // `dir` is a checkpoint folder, or directly the path of one .safetensors file.
  explicit Checkpoint(const std::string& dir);

  const TensorInfo* find(std::string_view name) const;  // nullptr if absent
  const TensorInfo& get(std::string_view name) const;   // ug::Error naming dir and tensor if absent
  std::vector<std::string> names() const;               // sorted
  const std::string& dir() const { return dir_; }
  size_t total_bytes() const { return total_bytes_; }
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }
  // Hints the kernel to read all tensor data ahead of use (madvise WILLNEED); returns at once.
  void prefetch() const;

 private:
  void load_single(const std::string& path);
  void load_index(const std::string& index_path);
  void add_file(const std::string& path);

  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorInfo*, std::less<>> by_name_;
  size_t total_bytes_ = 0;
};

}  // namespace ug
