// Read-only memory mapping of a whole file (RAII). Weights are used in place from the mapping.
#pragma once

#include <cstddef>
#include <string>

namespace ug {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws ug::Error with the path and errno text
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

// Whole file into a string (for JSON); throws ug::Error naming the path.
std::string read_text_file(const std::string& path);

}  // namespace ug
