// Token masks of a JSON matcher state: bit i set = appending token i's bytes keeps the text a
// viable prefix. Computed by one walk over the vocabulary trie (token_trie.h) that steps the
// matcher once per trie node (shared prefixes are walked once, a dead node skips its whole subtree)
// and cached per state, since replies revisit the same states (inside a string, between properties,
// ...). Not thread-safe: one JsonMaskProvider is used by one thread (the scheduler's) at a time.
#pragma once

#include <algorithm>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/json_constraint/json_matcher.h"
#include "runtime/json_constraint/token_trie.h"

namespace ug {

using TokenMask = std::vector<uint64_t>;  // [ceil(vocab / 64)] bits

inline bool mask_test(const TokenMask& m, int32_t id) {
  return m[size_t(id) >> 6] >> (id & 63) & 1;
}

// The walk itself, without caching (holds per-depth scratch states). Inside a string, where nearly
// every token is viable, "plain" tokens (text without '"', '\\' or control characters, whole UTF-8
// characters) are allowed by their length alone and only the others are walked.
class TokenMasker {
 public:
  TokenMasker(std::shared_ptr<const JsonGrammar> grammar, std::shared_ptr<const TokenTrie> trie);
  void compute(const JsonStackSet& state, TokenMask& mask);
  // Oracle for tests: every token checked on its own with JsonMatcher::advance.
  void compute_slow(const JsonStackSet& state, TokenMask& mask) const;
  const JsonMatcher& matcher() const { return matcher_; }
  const TokenTrie& trie() const { return *trie_; }

 private:
  std::shared_ptr<const JsonGrammar> grammar_;
  void walk(const TokenTrie& t, const JsonStackSet& state, TokenMask& mask);

  std::shared_ptr<const TokenTrie> trie_;
  JsonMatcher matcher_;
  std::vector<JsonStackSet> levels_;  // levels_[d]: state after the first d bytes of the node
};

struct MaskStats {
  int64_t computed = 0, cached = 0;
  double compute_seconds = 0;  // total walk time
};

// A TokenMasker plus an LRU cache of masks keyed by the matcher state.
class JsonMaskProvider {
 public:
  JsonMaskProvider(std::shared_ptr<const JsonGrammar> grammar,
                   std::shared_ptr<const TokenTrie> trie, size_t capacity = 256);
  const TokenMask& mask(const JsonStackSet& state);
  const JsonGrammar& grammar() const { return *grammar_; }
  const TokenTrie& trie() const { return masker_.trie(); }
  const JsonMatcher& matcher() const { return masker_.matcher(); }
  const MaskStats& stats() const { return stats_; }

 private:
  struct Entry {
    std::string key;
    TokenMask mask;
  };
  std::shared_ptr<const JsonGrammar> grammar_;
  TokenMasker masker_;
  size_t capacity_;
  std::list<Entry> lru_;  // most recent first
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index_;
  MaskStats stats_;
};

}  // namespace ug
