#include "runtime/json_constraint/token_mask.h"

#include <chrono>

namespace ug {

TokenMasker::TokenMasker(std::shared_ptr<const JsonGrammar> grammar,
                         std::shared_ptr<const TokenTrie> trie)
    : grammar_(std::move(grammar)), trie_(std::move(trie)), matcher_(*grammar_) {
  levels_.resize(trie_->max_depth() + 1);
}

void TokenMasker::compute(const JsonStackSet& state, TokenMask& mask) {
  const TokenTrie& t = *trie_;
  mask.assign((size_t(t.vocab_size()) + 63) / 64, 0);
  if (auto room = matcher_.plain_string_room(state)) {  // inside a string: plain tokens by length
    if (*room > 0) mask = t.plain_up_to(*room);
    walk(t.non_plain(), state, mask);
    return;
  }
  walk(t, state, mask);
}

void TokenMasker::walk(const TokenTrie& t, const JsonStackSet& state, TokenMask& mask) {
  levels_[0] = state;
  const size_t n = t.nodes();
  for (size_t i = 1; i < n;) {
    const uint32_t d = t.depth(i);
    JsonStackSet& here = levels_[d];
    matcher_.step(levels_[d - 1], t.byte(i), here);
    if (here.empty()) {
      i = t.subtree_end(i);
      continue;
    }
    for (const int32_t* id = t.tokens_begin(i); id != t.tokens_end(i); ++id)
      mask[size_t(*id) >> 6] |= uint64_t(1) << (*id & 63);
    ++i;
  }
}

void TokenMasker::compute_slow(const JsonStackSet& state, TokenMask& mask) const {
  const TokenTrie& t = *trie_;
  mask.assign((size_t(t.vocab_size()) + 63) / 64, 0);
  for (int32_t id = 0; id < t.vocab_size(); ++id) {
    if (t.bytes(id).empty()) continue;
    if (!matcher_.advance(state, t.bytes(id)).empty())
      mask[size_t(id) >> 6] |= uint64_t(1) << (id & 63);
  }
}

JsonMaskProvider::JsonMaskProvider(std::shared_ptr<const JsonGrammar> grammar,
                                   std::shared_ptr<const TokenTrie> trie, size_t capacity)
    : grammar_(grammar), masker_(std::move(grammar), std::move(trie)), capacity_(capacity) {}

const TokenMask& JsonMaskProvider::mask(const JsonStackSet& state) {
  std::string key = state.key();
  if (auto it = index_.find(key); it != index_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    ++stats_.cached;
    return lru_.front().mask;
  }
  if (lru_.size() >= capacity_ && !lru_.empty()) {
    index_.erase(lru_.back().key);
    lru_.pop_back();
  }
  lru_.push_front({std::move(key), {}});
  const auto t0 = std::chrono::steady_clock::now();
  masker_.compute(state, lru_.front().mask);
  stats_.compute_seconds +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ++stats_.computed;
  index_[lru_.front().key] = lru_.begin();
  return lru_.front().mask;
}

}  // namespace ug
