#include "runtime/json_constraint/json_constraint.h"

#include <algorithm>
#include <limits>

#include "core/error.h"

namespace ug {

JsonConstraint::JsonConstraint(std::shared_ptr<JsonMaskProvider> provider,
                               JsonConstraintOptions options)
    : provider_(std::move(provider)), options_(std::move(options)) {
  state_ = provider_->matcher().initial();
}

bool JsonConstraint::is_stop(int32_t id) const {
  return std::find(options_.stop_ids.begin(), options_.stop_ids.end(), id) !=
         options_.stop_ids.end();
}

bool JsonConstraint::complete() const {
  return phase_ == Phase::kEnded ||
         (phase_ == Phase::kJson && provider_->matcher().accepts(state_));
}

void JsonConstraint::mask_logits(std::span<float> logits) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  if (phase_ == Phase::kFree || phase_ == Phase::kEnded) return;
  if (phase_ == Phase::kThought) {
    for (int32_t id : options_.stop_ids)
      if (id >= 0 && size_t(id) < logits.size()) logits[size_t(id)] = kNegInf;
    return;
  }
  // Ids the trie leaves out (specials) that may still be allowed here.
  std::vector<std::pair<int32_t, float>> keep;
  auto keep_id = [&](int32_t id) {
    if (id >= 0 && size_t(id) < logits.size()) keep.push_back({id, logits[size_t(id)]});
  };
  if (phase_ == Phase::kJson && provider_->matcher().accepts(state_))
    for (int32_t id : options_.stop_ids) keep_id(id);
  if (phase_ == Phase::kStart) {
    if (!thought_done_ && options_.thought_close >= 0) keep_id(options_.thought_open);
    keep_id(options_.tool_call_open);
  }
  const TokenMask& m = provider_->mask(state_);
  const size_t vocab = std::min(logits.size(), size_t(provider_->trie().vocab_size()));
  for (size_t w = 0; w * 64 < vocab; ++w) {
    uint64_t bits = m[w];
    if (bits == ~uint64_t(0)) continue;
    const size_t end = std::min(vocab, w * 64 + 64);
    for (size_t id = w * 64; id < end; ++id)
      if (!(bits >> (id & 63) & 1)) logits[id] = kNegInf;
  }
  for (size_t id = vocab; id < logits.size(); ++id) logits[id] = kNegInf;
  for (const auto& [id, v] : keep) logits[size_t(id)] = v;
}

void JsonConstraint::accept(int32_t id) {
  switch (phase_) {
    case Phase::kFree:
    case Phase::kEnded:
      return;
    case Phase::kThought:
      if (is_stop(id)) fail("json constraint: stop id {} inside the thought channel", id);
      if (id == options_.thought_close) {
        phase_ = Phase::kStart;
        thought_done_ = true;
      }
      return;
    case Phase::kStart:
      if (id == options_.thought_open && !thought_done_ && options_.thought_close >= 0) {
        phase_ = Phase::kThought;
        return;
      }
      if (id == options_.tool_call_open && id >= 0) {
        phase_ = Phase::kFree;
        return;
      }
      phase_ = Phase::kJson;
      [[fallthrough]];
    case Phase::kJson: {
      if (is_stop(id)) {
        UG_CHECK(provider_->matcher().accepts(state_),
                 "json constraint: stop id {} before the JSON value is complete", id);
        phase_ = Phase::kEnded;
        return;
      }
      const TokenTrie& t = provider_->trie();
      UG_CHECK(id >= 0 && id < t.vocab_size() && !t.bytes(id).empty(),
               "json constraint: token {} cannot appear in JSON text", id);
      scratch_ = provider_->matcher().advance(state_, t.bytes(id));
      UG_CHECK(!scratch_.empty(), "json constraint: token {} does not continue the JSON text", id);
      std::swap(state_, scratch_);
      return;
    }
  }
}

}  // namespace ug
