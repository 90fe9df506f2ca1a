// Bidirectional piece <-> id table. Pieces live in one arena; the tables hold views into it, so a
// Vocab is neither copied nor moved (the Tokenizer shares it through a shared_ptr).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/bpe_json_reader.h"

namespace ug::bpe {

class Vocab {
 public:
  Vocab() = default;
  Vocab(const Vocab&) = delete;
  Vocab& operator=(const Vocab&) = delete;
  Vocab(Vocab&&) = delete;

  // Takes model.vocab from `raw` (its arena is moved out). Checks that pieces and ids are unique.
  void build_from_model(RawTokenizerJson& raw, std::string_view source);
  // Registers an added token; checks it agrees with model.vocab on both its piece and its id.
  void add_token(std::string_view content, int32_t id, std::string_view where);
  // Checks there are no ids without a piece in [0, size).
  void finish(std::string_view source) const;

  std::optional<int32_t> find(std::string_view piece) const {
    int32_t id = lookup(piece, hash(piece));
    if (id < 0) return std::nullopt;
    return id;
  }
  // Only pieces of model.vocab (what BPE may produce), not extra added tokens.
  std::optional<int32_t> find_model(std::string_view piece) const {
    int32_t id = lookup(piece, hash(piece));
    if (id < 0 || kinds_[size_t(id)] != Kind::kModel) return std::nullopt;
    return id;
  }
  std::string_view piece(int32_t id) const { return pieces_[size_t(id)]; }
  int32_t size() const { return int32_t(pieces_.size()); }

 private:
  enum class Kind : uint8_t { kHole, kModel, kAdded };
  // Open addressing over ids: ~800k lookups happen while resolving merges, and a flat table avoids
  // the node chasing of std::unordered_map.
  struct Slot {
    uint32_t hash = 0;
    int32_t id = -1;
  };
  static uint64_t hash(std::string_view s);
  int32_t lookup(std::string_view piece, uint64_t h) const;
  void index_insert(int32_t id, uint64_t h);
  void set(int32_t id, std::string_view piece, Kind kind, std::string_view where);

  std::string arena_;              // model.vocab pieces
  std::deque<std::string> extra_;  // added tokens missing from model.vocab (stable addresses)
  std::vector<std::string_view> pieces_;  // by id
  std::vector<Kind> kinds_;
  std::vector<Slot> slots_;  // power-of-two size, at most half full
  size_t used_ = 0;
};

}  // namespace ug::bpe
