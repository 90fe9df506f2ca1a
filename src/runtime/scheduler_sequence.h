// The scheduler's state of one request (internal to scheduler.cc): its tokens and keys, its KV cache, its
// sampler, detokenizer and stop matcher, and the result being built.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "model/kv_cache.h"
#include "runtime/prefix_cache.h"
#include "runtime/sampler.h"
#include "runtime/scheduler.h"
#include "runtime/stop_matcher.h"
#include "tokenizer/detokenizer.h"

namespace ug {

using SchedClock = std::chrono::steady_clock;

struct Sequence {
  Sequence(SequenceParams p, SequenceCallbacks cb, int32_t vocab, const Tokenizer* tokenizer)
      : params(std::move(p)),
        callbacks(std::move(cb)),
        sampler(params.sampling, vocab),
        stops(params.stop_strings) {
    keys = token_keys(params.prompt);
    chain = hash_chain(keys);
    tokens = params.prompt.tokens;
    if (tokenizer) detok.emplace(*tokenizer);
  }

  uint64_t id = 0;
  SequenceParams params;
  SequenceCallbacks callbacks;
  std::vector<uint64_t> keys;     // prompt keys, then generated ids; the cache holds keys[0, cache->size())
  std::vector<uint64_t> chain;    // hash chain of the prompt keys
  std::vector<int32_t> tokens;    // prompt ids, then generated ids
  std::vector<int32_t> generated;
  std::unique_ptr<KvCache> cache;  // null while waiting and after the end
  Sampler sampler;
  std::optional<IncrementalDetokenizer> detok;
  std::unique_ptr<JsonConstraint> constraint;  // params.constraint.json set
  StopMatcher stops;
  std::vector<float> logits;  // [vocab], the last forward's
  int64_t reserved_tokens = 0;
  SequenceResult result;
  SchedClock::time_point submitted{}, admitted{}, first_token{};
  bool done = false;

  int64_t prompt_size() const { return params.prompt.size(); }
  bool prefilling() const { return cache->size() < prompt_size(); }
  KeyedTokens view() const { return {keys, params.prompt.block_ids, chain}; }
};

// Log-softmax of `logits` for the chosen id and the `top` best ids (best first, ties: lower id).
void fill_logprobs(std::span<const float> logits, int32_t chosen, int32_t top, TokenEvent& ev);

}  // namespace ug
