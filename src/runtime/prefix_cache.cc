#include "runtime/prefix_cache.h"

#include <algorithm>

#include "core/error.h"
#include "model/decoder.h"

namespace ug {
namespace {

uint64_t mix(uint64_t h, uint64_t v) {  // splitmix64 finalizer over h ^ v
  uint64_t z = h ^ (v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2));
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

constexpr uint64_t kMediaBit = 1ull << 63;

}  // namespace

std::vector<uint64_t> token_keys(const PromptInput& prompt) {
  std::vector<uint64_t> keys(prompt.tokens.begin(), prompt.tokens.end());
  for (const MediaSpan& m : prompt.media) {
    UG_CHECK(m.position >= 0 && m.count >= 0 && m.position + m.count <= prompt.size(),
             "media span [{}, {}) outside a prompt of {} tokens", m.position, m.position + m.count, prompt.size());
    for (int64_t i = 0; i < m.count; ++i) {
      uint64_t& k = keys[size_t(m.position + i)];
      k = kMediaBit | mix(mix(m.content_hash, uint64_t(m.row_offset + i)), k);
    }
  }
  return keys;
}

std::vector<uint64_t> hash_chain(std::span<const uint64_t> keys) {
  std::vector<uint64_t> chain;
  uint64_t h = 0x51ed270b27d1a3c5ull;
  for (size_t i = 0; i < keys.size(); ++i) {
    h = mix(h, keys[i]);
    if ((int64_t(i) + 1) % kHashBlock == 0) chain.push_back(h);
  }
  return chain;
}

int64_t usable_prefix(const KeyedTokens& prompt, const KeyedTokens& cached, const KvCache& cache) {
  const int64_t limit = std::min({int64_t(prompt.keys.size()) - 1, cache.size(), int64_t(cached.keys.size())});
  if (limit <= 0) return 0;
  // Whole hash blocks first, then verify them by comparing (a collision falls back to a plain compare).
  size_t blocks = 0;
  while (blocks < prompt.chain.size() && blocks < cached.chain.size() && prompt.chain[blocks] == cached.chain[blocks])
    ++blocks;
  int64_t p = std::min(int64_t(blocks) * kHashBlock, limit);
  if (!std::equal(prompt.keys.begin(), prompt.keys.begin() + p, cached.keys.begin())) p = 0;
  while (p < limit && prompt.keys[size_t(p)] == cached.keys[size_t(p)]) ++p;
  // Never resume inside a bidirectional block (of either side): recompute the whole block.
  while (p > 0 && !(is_chunk_boundary(prompt.block_ids, p) && is_chunk_boundary(cached.block_ids, p))) --p;
  return p > 0 && cache.can_truncate(p) ? p : 0;
}

PrefixCache::Match PrefixCache::find(const KeyedTokens& prompt) {
  Match best{entries_.end(), 0};
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    int64_t p = usable_prefix(prompt, it->view(), *it->cache);
    if (p > best.tokens) best = {it, p};
  }
  return best;
}

std::unique_ptr<KvCache> PrefixCache::take(Handle h) {
  std::unique_ptr<KvCache> c = std::move(h->cache);
  entries_.erase(h);
  return c;
}

void PrefixCache::insert(std::vector<uint64_t> keys, std::vector<int32_t> block_ids, std::unique_ptr<KvCache> cache) {
  UG_CHECK(cache && int64_t(keys.size()) == cache->size(), "prefix cache: {} keys for a cache of {} tokens",
           keys.size(), cache ? cache->size() : 0);
  block_ids.resize(std::min(block_ids.size(), keys.size()));
  const int64_t reach = cache->min_truncate();
  std::erase_if(entries_, [&](const Entry& e) {
    return e.keys.size() <= keys.size() && std::equal(e.keys.begin(), e.keys.end(), keys.begin()) &&
           reach <= e.cache->min_truncate();
  });
  Entry e{.keys = std::move(keys), .block_ids = std::move(block_ids), .chain = {}, .cache = std::move(cache)};
  e.chain = hash_chain(e.keys);
  entries_.push_front(std::move(e));
}

bool PrefixCache::evict_lru(const Entry* keep) {
  for (auto it = entries_.end(); it != entries_.begin();) {
    --it;
    if (&*it == keep) continue;
    entries_.erase(it);
    return true;
  }
  return false;
}

size_t PrefixCache::bytes() const {
  size_t b = 0;
  for (const Entry& e : entries_) b += e.cache->bytes();
  return b;
}

}  // namespace ug
