// Prefix cache of the scheduler: KV caches of finished sequences, kept LRU within the KV budget and
// looked up by the longest common token prefix with a new prompt.
//
// Keys: one uint64 per cached position (token_keys): the token id for text, and for a multimodal soft
// token a hash of (media content hash, row index, token id) with the top bit set, so two prompts that show
// different images at the same placeholder positions never match. A hash chain per kHashBlock positions
// finds the matching whole blocks fast; the prefix is then verified by comparing the keys themselves and
// extended token by token.
//
// A cached KV of n tokens serves a prompt with common prefix p when it can roll back to p (KvCache::
// can_truncate: p >= n - ring_slack - 1 once the sliding-window rings have wrapped), p never ends inside a
// bidirectional block (backs off to the block start), and p < prompt length (one token is always computed
// so the last position has logits). Agent loops hit: turn k's prompt = turn k-1's prompt + the re-rendered
// reply + new messages, and the cached entry of turn k-1 (prompt + reply) rolls back to where the re-rendered
// reply first differs, as long as that is within the slack.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <span>
#include <vector>

#include "model/kv_cache.h"
#include "runtime/prompt_input.h"

namespace ug {

// Per-position keys of a prompt (see above).
std::vector<uint64_t> token_keys(const PromptInput& prompt);

// Hash chain: chain[i] identifies keys[0 .. (i + 1) * kHashBlock).
constexpr int64_t kHashBlock = 64;
std::vector<uint64_t> hash_chain(std::span<const uint64_t> keys);

// What one side of a prefix comparison holds: keys and block ids per position (block_ids may be shorter
// than keys or empty: missing = -1), and the chain of its keys.
struct KeyedTokens {
  std::span<const uint64_t> keys;
  std::span<const int32_t> block_ids;
  std::span<const uint64_t> chain;
};

// Longest prefix of `prompt` that `cached` (backed by `cache`, whose first cache.size() positions are
// cached.keys) can serve: see the header comment. 0 = no use.
int64_t usable_prefix(const KeyedTokens& prompt, const KeyedTokens& cached, const KvCache& cache);

class PrefixCache {
 public:
  struct Entry {
    std::vector<uint64_t> keys;      // [cache->size()]
    std::vector<int32_t> block_ids;  // [cache->size()] or empty
    std::vector<uint64_t> chain;
    std::unique_ptr<KvCache> cache;
    KeyedTokens view() const { return {keys, block_ids, chain}; }
  };
  using Handle = std::list<Entry>::iterator;

  struct Match {
    Handle entry;
    int64_t tokens = 0;  // 0: no match (entry invalid)
  };

  // Best entry for a prompt (most usable tokens; ties: most recently used).
  Match find(const KeyedTokens& prompt);
  // Removes the entry and hands over its cache (not yet truncated).
  std::unique_ptr<KvCache> take(Handle h);
  // Inserts a finished sequence's cache as the most recently used entry; drops entries it subsumes (their
  // keys are a prefix of these keys and this cache can roll back at least as far).
  void insert(std::vector<uint64_t> keys, std::vector<int32_t> block_ids, std::unique_ptr<KvCache> cache);
  // Drops the least recently used entry, except `keep` (if given); false if there was none to drop.
  bool evict_lru(const Entry* keep = nullptr);
  void clear() { entries_.clear(); }

  size_t bytes() const;
  int64_t size() const { return int64_t(entries_.size()); }

 private:
  std::list<Entry> entries_;  // most recently used first
};

}  // namespace ug
