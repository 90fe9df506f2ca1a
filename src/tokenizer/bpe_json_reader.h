// Streaming reader for HF tokenizer.json files. The 32 MB Gemma file is mostly model.vocab and
// model.merges; those two are read straight into compact arenas (no JSON DOM), everything else into
// a small nlohmann::json tree. This keeps loading well under a second.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace ug::bpe {

// A string stored in an arena: [offset, offset + size).
struct ArenaRef {
  uint32_t offset = 0;
  uint32_t size = 0;
};

struct RawVocabEntry {
  ArenaRef piece;
  int64_t id = 0;
};

struct RawMerge {
  ArenaRef left;
  ArenaRef right;
};

struct RawTokenizerJson {
  nlohmann::json rest;  // every field except model.vocab and model.merges
  bool has_vocab = false;
  bool has_merges = false;
  std::string vocab_arena;
  std::vector<RawVocabEntry> vocab;  // in file order
  std::string merge_arena;
  std::vector<RawMerge> merges;  // in file order (= rank)

  std::string_view vocab_piece(const RawVocabEntry& e) const {
    return std::string_view(vocab_arena).substr(e.piece.offset, e.piece.size);
  }
  std::string_view merge_part(ArenaRef r) const {
    return std::string_view(merge_arena).substr(r.offset, r.size);
  }
};

// Parses `json`; throws ug::Error prefixed with `source` (line:column for syntax errors, the JSON
// path for vocab/merges shape errors).
RawTokenizerJson read_tokenizer_json(std::string_view json, std::string_view source);

}  // namespace ug::bpe
