// The scheduler's state of one request (internal to scheduler.cc): its tokens and keys, its KV cache, its
// sampler, detokenizer and stop matcher, and the result being built.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "model/decoder.h"
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
      : params(std::move(p)), callbacks(std::move(cb)), sampler(params.sampling, vocab), stops(params.stop_strings) {
    keys = token_keys(params.prompt);
    chain = hash_chain(keys);
    tokens = params.prompt.tokens;
    if (tokenizer) detok.emplace(*tokenizer);
  }

  uint64_t id = 0;
  SequenceParams params;
  SequenceCallbacks callbacks;
  std::vector<uint64_t> keys;   // prompt keys, then generated ids; the cache holds keys[0, cache->size())
  std::vector<uint64_t> chain;  // hash chain of the prompt keys
  std::vector<int32_t> tokens;  // prompt ids, then generated ids
  std::vector<int32_t> generated;
  std::unique_ptr<KvCache> cache;  // null while waiting and after the end
  Sampler sampler;
  std::optional<IncrementalDetokenizer> detok;
  std::unique_ptr<JsonConstraint> constraint;  // params.constraint.json set
  StopMatcher stops;
  std::vector<float> logits;  // [vocab], the last forward's
  int32_t argmax = 0;         // the last forward's argmax when device_greedy()
  TopLogits top;              // the last forward's top-k candidates when device_top_k()
  int64_t reserved_tokens = 0;
  SequenceResult result;
  SchedClock::time_point submitted{}, admitted{}, first_token{};
  bool done = false;

  int64_t prompt_size() const { return params.prompt.size(); }
  bool prefilling() const { return cache->size() < prompt_size(); }
  // Greedy with nothing that needs the logits on the host (penalties, logprobs, a grammar): the backend's argmax
  // (skipping suppress_tokens) is the sampler's choice, and no logits row is copied (on the GPU: 4 bytes back).
  bool device_greedy() const { return sampler.argmax_is_enough() && params.top_logprobs < 0 && !constraint; }
  // Sampled with top-k and nothing else that needs the whole row: the backend finds the top-k candidates (on the
  // GPU: a few KB back) and the sampler draws from them exactly as from the row.
  bool device_top_k() const {
    return sampler.samples_from_top_k() && params.sampling.top_k <= kMaxTopLogitsK && params.top_logprobs < 0 &&
           !constraint;
  }
  // The logits outputs of this sequence's item in a step that ends its prompt or decodes.
  void want_next_token(BatchItem& item) {
    if (device_greedy()) {
      item.argmax = &argmax;
      item.argmax_excluded = params.sampling.suppress_tokens;
    } else if (device_top_k()) {
      top.k = params.sampling.top_k;
      item.top_logits = &top;
      item.argmax_excluded = params.sampling.suppress_tokens;
    } else {
      item.logits = logits.data();
    }
  }
  KeyedTokens view() const { return {keys, params.prompt.block_ids, chain}; }
};

// Log-softmax of `logits` for the chosen id and the `top` best ids (best first, ties: lower id).
void fill_logprobs(std::span<const float> logits, int32_t chosen, int32_t top, TokenEvent& ev);

}  // namespace ug
