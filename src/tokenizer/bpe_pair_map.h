// Open-addressing hash map from a pair of token ids to its merge (rank, result id). The merge table
// has ~500k entries and is probed for every adjacent pair during encoding, so it is kept flat.
#pragma once

#include <cstdint>
#include <vector>

namespace ug::bpe {

struct Merge {
  uint32_t rank = 0;
  int32_t result = -1;
};

class PairMap {
 public:
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n + n / 2) cap <<= 1;
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
    size_ = 0;
  }

  // Later entries replace earlier ones, as HF's HashMap collect does for duplicate pairs.
  void insert_or_assign(int32_t a, int32_t b, Merge m) {
    if ((size_ + 1) * 4 > slots_.size() * 3) grow();  // keep the load under 3/4
    uint64_t k = key(a, b);
    for (size_t i = hash(k) & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.key == kEmpty) {
        s = Slot{k, m};
        ++size_;
        return;
      }
      if (s.key == k) {
        s.merge = m;
        return;
      }
    }
  }

  const Merge* find(int32_t a, int32_t b) const {
    if (slots_.empty()) return nullptr;
    uint64_t k = key(a, b);
    for (size_t i = hash(k) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == k) return &s.merge;
      if (s.key == kEmpty) return nullptr;
    }
  }

  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};  // ids are non-negative, so never a real key
  struct Slot {
    uint64_t key = kEmpty;
    Merge merge;
  };

  static uint64_t key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  static uint64_t hash(uint64_t k) {  // splitmix64 finalizer
    k ^= k >> 30;
    k *= 0xbf58476d1ce4e5b9ULL;
    k ^= k >> 27;
    k *= 0x94d049bb133111ebULL;
    return k ^ (k >> 31);
  }

  void grow() {
    std::vector<Slot> old = std::move(slots_);
    reserve(old.empty() ? 8 : old.size());
    for (const Slot& s : old)
      if (s.key != kEmpty)
        insert_or_assign(int32_t(s.key >> 32), int32_t(uint32_t(s.key)), s.merge);
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace ug::bpe
