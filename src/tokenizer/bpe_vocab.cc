#include "tokenizer/bpe_vocab.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace ug::bpe {
namespace {

std::string json_quote(std::string_view s) { return nlohmann::json(std::string(s)).dump(); }

}  // namespace

uint64_t Vocab::hash(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a, then a final mix; pieces are short
  for (char c : s) h = (h ^ uint8_t(c)) * 0x100000001b3ULL;
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ULL;
  return h ^ (h >> 32);
}

int32_t Vocab::lookup(std::string_view piece, uint64_t h) const {
  if (slots_.empty()) return -1;
  const size_t mask = slots_.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (s.id < 0) return -1;
    if (s.hash == uint32_t(h >> 32) && pieces_[size_t(s.id)] == piece) return s.id;
  }
}

void Vocab::index_insert(int32_t id, uint64_t h) {
  if ((used_ + 1) * 2 > slots_.size()) {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(std::max<size_t>(64, old.size() * 2), Slot{});
    used_ = 0;
    for (const Slot& s : old)
      if (s.id >= 0) index_insert(s.id, hash(pieces_[size_t(s.id)]));
  }
  const size_t mask = slots_.size() - 1;
  size_t i = h & mask;
  while (slots_[i].id >= 0) i = (i + 1) & mask;
  slots_[i] = Slot{uint32_t(h >> 32), id};
  ++used_;
}

void Vocab::set(int32_t id, std::string_view piece, Kind kind, std::string_view where) {
  if (size_t(id) >= pieces_.size()) {
    pieces_.resize(size_t(id) + 1);
    kinds_.resize(size_t(id) + 1, Kind::kHole);
  }
  if (kinds_[size_t(id)] != Kind::kHole)
    fail("{}: id {} is used by both {} and {}", where, id, json_quote(pieces_[size_t(id)]),
         json_quote(piece));
  uint64_t h = hash(piece);
  int32_t existing = lookup(piece, h);
  if (existing >= 0)
    fail("{}: piece {} appears twice (ids {} and {})", where, json_quote(piece), existing, id);
  pieces_[size_t(id)] = piece;
  kinds_[size_t(id)] = kind;
  index_insert(id, h);
}

void Vocab::build_from_model(RawTokenizerJson& raw, std::string_view source) {
  arena_ = std::move(raw.vocab_arena);
  int64_t max_id = -1;
  for (const RawVocabEntry& e : raw.vocab) max_id = std::max(max_id, e.id);
  // A hole would be rejected by finish() anyway; checking here avoids a huge table for a huge id.
  UG_CHECK(max_id < int64_t(raw.vocab.size()),
           "{}: model.vocab: ids must cover [0, {}) without holes, found id {}", source,
           raw.vocab.size(), max_id);
  pieces_.assign(size_t(max_id + 1), std::string_view());
  kinds_.assign(size_t(max_id + 1), Kind::kHole);
  size_t cap = 64;
  while (cap < (raw.vocab.size() + 64) * 2) cap <<= 1;
  slots_.assign(cap, Slot{});
  std::string where = fmt::format("{}: model.vocab", source);
  std::string_view arena(arena_);
  for (const RawVocabEntry& e : raw.vocab)
    set(int32_t(e.id), arena.substr(e.piece.offset, e.piece.size), Kind::kModel, where);
  raw.vocab.clear();
  raw.vocab.shrink_to_fit();
}

void Vocab::add_token(std::string_view content, int32_t id, std::string_view where) {
  int32_t existing = lookup(content, hash(content));
  if (existing >= 0) {
    if (existing != id)
      fail("{}: {} has id {} in model.vocab but id {} here", where, json_quote(content), existing,
           id);
    return;
  }
  UG_CHECK(id >= 0 && size_t(id) < pieces_.size() + (1u << 20), "{}: id {} is out of range", where,
           id);
  if (size_t(id) < pieces_.size() && kinds_[size_t(id)] != Kind::kHole)
    fail("{}: id {} is {} in model.vocab but {} here", where, id, json_quote(pieces_[size_t(id)]),
         json_quote(content));
  extra_.emplace_back(content);
  set(id, extra_.back(), Kind::kAdded, where);
}

void Vocab::finish(std::string_view source) const {
  UG_CHECK(!pieces_.empty(), "{}: model.vocab is empty", source);
  for (size_t id = 0; id < kinds_.size(); ++id)
    UG_CHECK(kinds_[id] != Kind::kHole,
             "{}: no piece has id {} (ids must cover [0, {}) without holes)", source, id,
             kinds_.size());
}

}  // namespace ug::bpe
