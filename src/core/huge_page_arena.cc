#include "core/huge_page_arena.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace ug {
namespace {
constexpr size_t kHugePage = size_t(2) << 20;
constexpr size_t kBlock = size_t(256) << 20;  // small tensors share blocks; big ones get their own
constexpr size_t kAlign = 64;

size_t round_up(size_t v, size_t a) { return (v + a - 1) / a * a; }
}  // namespace

HugePageArena::~HugePageArena() {
  for (auto& b : blocks_) ::munmap(b.base, b.size);
}

void* HugePageArena::allocate(size_t bytes) {
  bytes = round_up(bytes == 0 ? 1 : bytes, kAlign);
  if (!blocks_.empty() && blocks_.back().size - blocks_.back().used >= bytes) {
    Block& b = blocks_.back();
    void* p = b.base + b.used;
    b.used += bytes;
    return p;
  }
  size_t size = round_up(std::max(bytes, kBlock), kHugePage);
  // Over-allocate by one huge page so the block can start on a 2 MiB boundary.
  void* raw = ::mmap(nullptr, size + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) fail("cannot allocate {:.2f} GB for the weights: {}", double(size) / 1e9, std::strerror(errno));
  char* base = reinterpret_cast<char*>(round_up(reinterpret_cast<size_t>(raw), kHugePage));
  size_t head = size_t(base - static_cast<char*>(raw));
  if (head) ::munmap(raw, head);
  if (kHugePage - head) ::munmap(base + size, kHugePage - head);
  ::madvise(base, size, MADV_HUGEPAGE);  // advisory: without THP support this is a plain copy
  blocks_.push_back({base, size, bytes});
  return base;
}

size_t HugePageArena::reserved_bytes() const {
  size_t total = 0;
  for (const auto& b : blocks_) total += b.size;
  return total;
}

}  // namespace ug
