// Bump allocator over anonymous memory advised for transparent huge pages. Used to hold a private
// copy of the weights: streaming 2 MiB pages instead of 4 KiB page-cache pages nearly doubles CPU
// decode bandwidth on the machines we measured (docs/perf.md).
#pragma once

#include <cstddef>
#include <vector>

namespace ug {

class HugePageArena {
 public:
  HugePageArena() = default;
  ~HugePageArena();
  HugePageArena(const HugePageArena&) = delete;
  HugePageArena& operator=(const HugePageArena&) = delete;

  // 64-byte aligned, uninitialised; throws ug::Error when the memory cannot be had.
  void* allocate(size_t bytes);
  size_t reserved_bytes() const;

 private:
  struct Block {
    char* base;
    size_t size;
    size_t used;
  };
  std::vector<Block> blocks_;
};

}  // namespace ug
