#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "core/error.h"

namespace ug {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// NaN fails every comparison, so each check is written as "value is inside the range".
void check_range(bool ok, const char* field, const char* range, double value) {
  UG_CHECK(ok, "SamplingParams.{} must be {}, got {}", field, range, value);
}

// Candidate order wherever order matters: higher logit first, then lower id. A strict total
// order, so the sorted / selected results do not depend on the library's algorithm.
struct ByLogitDesc {
  template <typename C>
  bool operator()(const C& a, const C& b) const {
    return a.logit != b.logit ? a.logit > b.logit : a.id < b.id;
  }
};

}  // namespace

void SamplingParams::validate() const {
  check_range(std::isfinite(temperature) && temperature >= 0.0f, "temperature",
              "a finite number >= 0 (0 = greedy)", temperature);
  check_range(top_k >= 0, "top_k", "an integer >= 0 (0 = disabled)", top_k);
  check_range(top_p > 0.0f && top_p <= 1.0f, "top_p", "in (0, 1] (1 = disabled)", top_p);
  check_range(min_p >= 0.0f && min_p <= 1.0f, "min_p", "in [0, 1] (0 = disabled)", min_p);
  check_range(std::isfinite(repetition_penalty) && repetition_penalty > 0.0f, "repetition_penalty",
              "a finite number > 0 (1 = disabled)", repetition_penalty);
  check_range(presence_penalty >= -2.0f && presence_penalty <= 2.0f, "presence_penalty",
              "in [-2, 2] (0 = disabled)", presence_penalty);
  check_range(frequency_penalty >= -2.0f && frequency_penalty <= 2.0f, "frequency_penalty",
              "in [-2, 2] (0 = disabled)", frequency_penalty);
  for (size_t i = 0; i < suppress_tokens.size(); ++i) {
    UG_CHECK(suppress_tokens[i] >= 0, "SamplingParams.suppress_tokens[{}] must be >= 0, got {}", i,
             suppress_tokens[i]);
  }
}

Sampler::Sampler(SamplingParams params, int32_t vocab_size)
    : params_(std::move(params)), vocab_size_(vocab_size), rng_(params_.seed) {
  params_.validate();
  UG_CHECK(vocab_size > 0, "Sampler: vocab_size must be > 0, got {}", vocab_size);
  for (size_t i = 0; i < params_.suppress_tokens.size(); ++i) {
    UG_CHECK(params_.suppress_tokens[i] < vocab_size,
             "SamplingParams.suppress_tokens[{}] = {} is outside the vocabulary [0, {})", i,
             params_.suppress_tokens[i], vocab_size);
  }
}

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> prompt_ids,
                        std::span<const int32_t> generated_ids) {
  check_inputs(logits, prompt_ids, generated_ids);
  if (params_.repetition_penalty != 1.0f) {
    apply_repetition_penalty(logits, prompt_ids, generated_ids);
  }
  if (params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f) {
    apply_presence_frequency(logits, generated_ids);
  }
  for (int32_t id : params_.suppress_tokens) logits[id] = kNegInf;

  if (params_.temperature == 0.0f) return greedy(logits);
  if (params_.top_k > 0) {
    select_top_k(logits);
  } else {
    collect_candidates(logits);
  }
  return filter_and_draw();
}

namespace {
bool has_penalties(const SamplingParams& p) {
  return p.repetition_penalty != 1.0f || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f;
}
}  // namespace

bool Sampler::samples_from_top_k() const {
  return params_.temperature > 0.0f && params_.top_k > 0 && !has_penalties(params_);
}

bool Sampler::argmax_is_enough() const { return params_.temperature == 0.0f && !has_penalties(params_); }

int32_t Sampler::sample_top(TopLogits& top) {
  UG_CHECK(!top.bad, "Sampler: the logits hold NaN or +inf");
  // Penalties are off on this path (samples_from_top_k), so the row needs no history.
  return top.full.empty() ? sample_candidates(top.ids, top.values) : sample(top.full, {}, {});
}

int32_t Sampler::sample_candidates(std::span<const int32_t> ids, std::span<const float> logits) {
  UG_CHECK(samples_from_top_k(), "Sampler: candidates need top_k > 0, temperature > 0 and no penalties");
  UG_CHECK(ids.size() == logits.size(), "Sampler: {} candidate ids for {} logits", ids.size(), logits.size());
  candidates_.clear();
  for (size_t i = 0; i < ids.size(); ++i) {
    UG_CHECK(ids[i] >= 0 && ids[i] < vocab_size_, "Sampler: candidate {} = {} is outside the vocabulary [0, {})", i,
             ids[i], vocab_size_);
    UG_CHECK(std::isfinite(logits[i]), "Sampler: candidate logit {} (id {}) is {}", i, ids[i], logits[i]);
    candidates_.push_back({logits[i], 0.0f, ids[i]});
  }
  UG_CHECK(!candidates_.empty(), "Sampler: every token is masked (all logits are -inf)");
  std::sort(candidates_.begin(), candidates_.end(), ByLogitDesc{});
  return filter_and_draw();
}

// Temperature, top-p and min-p over the candidates (sorted by ByLogitDesc when top-k chose them), then the draw.
int32_t Sampler::filter_and_draw() {
  compute_weights();
  if (params_.top_p < 1.0f) apply_top_p();
  if (params_.min_p > 0.0f) {
    // prob_i >= min_p * max_prob  <=>  weight_i >= min_p (the max has weight 1).
    std::erase_if(candidates_, [&](const Candidate& c) { return c.weight < params_.min_p; });
  }
  return draw();
}

void Sampler::check_inputs(std::span<const float> logits, std::span<const int32_t> prompt_ids,
                           std::span<const int32_t> generated_ids) const {
  UG_CHECK(logits.size() == size_t(vocab_size_), "Sampler: logits have {} entries, expected {}",
           logits.size(), vocab_size_);
  for (int32_t id = 0; id < vocab_size_; ++id) {
    const float x = logits[id];
    UG_CHECK(!std::isnan(x), "Sampler: logits contain NaN at id {}", id);
    // +inf would turn the softmax into NaN; a softcapped model never produces it.
    UG_CHECK(x != std::numeric_limits<float>::infinity(), "Sampler: logits contain +inf at id {}",
             id);
  }
  auto check_ids = [&](std::span<const int32_t> ids, const char* name) {
    for (size_t i = 0; i < ids.size(); ++i) {
      UG_CHECK(ids[i] >= 0 && ids[i] < vocab_size_,
               "Sampler: {}[{}] = {} is outside the vocabulary [0, {})", name, i, ids[i],
               vocab_size_);
    }
  };
  check_ids(prompt_ids, "prompt_ids");
  check_ids(generated_ids, "generated_ids");
}

void Sampler::apply_repetition_penalty(std::span<float> logits, std::span<const int32_t> prompt_ids,
                                       std::span<const int32_t> generated_ids) {
  // A fresh stamp per call marks "already penalized" without clearing the whole array.
  if (seen_.empty()) seen_.assign(size_t(vocab_size_), 0);
  if (++stamp_ == 0) {
    std::fill(seen_.begin(), seen_.end(), 0);
    stamp_ = 1;
  }
  const float p = params_.repetition_penalty;
  auto penalize = [&](std::span<const int32_t> ids) {
    for (int32_t id : ids) {
      if (seen_[id] == stamp_) continue;  // HF gathers then scatters: each id once
      seen_[id] = stamp_;
      float& x = logits[id];
      x = x < 0.0f ? x * p : x / p;
    }
  };
  penalize(prompt_ids);
  penalize(generated_ids);
}

void Sampler::apply_presence_frequency(std::span<float> logits,
                                       std::span<const int32_t> generated_ids) {
  if (counts_.empty()) counts_.assign(size_t(vocab_size_), 0);
  for (int32_t id : generated_ids) ++counts_[id];
  for (int32_t id : generated_ids) {
    const int32_t count = counts_[id];
    if (count == 0) continue;  // already applied for this id
    logits[id] -= params_.frequency_penalty * float(count);
    logits[id] -= params_.presence_penalty;
    counts_[id] = 0;  // leaves counts_ all-zero for the next call
  }
}

int32_t Sampler::greedy(std::span<const float> logits) const {
  int32_t best = 0;
  for (int32_t id = 1; id < vocab_size_; ++id) {
    if (logits[id] > logits[best]) best = id;  // strict: ties keep the lowest id
  }
  UG_CHECK(logits[best] != kNegInf, "Sampler: every token is masked (all logits are -inf)");
  return best;
}

void Sampler::collect_candidates(std::span<const float> logits) {
  candidates_.clear();
  for (int32_t id = 0; id < vocab_size_; ++id) {
    if (logits[id] != kNegInf) candidates_.push_back({logits[id], 0.0f, id});
  }
  UG_CHECK(!candidates_.empty(), "Sampler: every token is masked (all logits are -inf)");
}

// Two passes without materializing the vocabulary: a size-k min-heap finds the k-th largest
// logit, then every id at or above it is collected. HF keeps all ties with the k-th value.
void Sampler::select_top_k(std::span<const float> logits) {
  const size_t k = size_t(params_.top_k);
  heap_.clear();
  for (float x : logits) {
    if (x == kNegInf) continue;
    if (heap_.size() < k) {
      heap_.push_back(x);
      std::push_heap(heap_.begin(), heap_.end(), std::greater<float>());
    } else if (x > heap_.front()) {
      std::pop_heap(heap_.begin(), heap_.end(), std::greater<float>());
      heap_.back() = x;
      std::push_heap(heap_.begin(), heap_.end(), std::greater<float>());
    }
  }
  UG_CHECK(!heap_.empty(), "Sampler: every token is masked (all logits are -inf)");
  const float threshold = heap_.size() == k ? heap_.front() : kNegInf;
  candidates_.clear();
  for (int32_t id = 0; id < vocab_size_; ++id) {
    const float x = logits[id];
    if (x >= threshold && x != kNegInf) candidates_.push_back({x, 0.0f, id});
  }
  std::sort(candidates_.begin(), candidates_.end(), ByLogitDesc{});
}

// weight = exp((logit - max) / T): the unnormalized softmax after temperature, max weight 1.
// Dividing (not multiplying by 1/T) keeps a tiny T from producing 0 * inf = NaN.
void Sampler::compute_weights() {
  float max_logit = kNegInf;
  for (const Candidate& c : candidates_) max_logit = std::max(max_logit, c.logit);
  const float t = params_.temperature;
  for (Candidate& c : candidates_) c.weight = std::exp((c.logit - max_logit) / t);
}

// HF TopPLogitsWarper: token i survives iff the mass of the tokens ranked above it is below
// top_p (so the smallest head reaching top_p is kept, and always at least one token).
void Sampler::apply_top_p() {
  double total = 0.0;
  for (const Candidate& c : candidates_) total += c.weight;
  const double target = double(params_.top_p) * total;
  drop_certain_tail(total - target);
  // Bisect on rank: [0, lo) is known kept (mass_above), the boundary lies in [lo, hi).
  auto first = candidates_.begin();
  size_t lo = 0, hi = candidates_.size();
  double mass_above = 0.0;
  while (hi - lo > 256) {
    const size_t mid = lo + (hi - lo) / 2;
    std::nth_element(first + ptrdiff_t(lo), first + ptrdiff_t(mid), first + ptrdiff_t(hi),
                     ByLogitDesc{});
    double head = 0.0;
    for (size_t i = lo; i < mid; ++i) head += candidates_[i].weight;
    if (mass_above + head < target) {  // the token ranked at mid is kept too
      mass_above += head;
      lo = mid;
    } else {
      hi = mid;
    }
  }
  std::sort(first + ptrdiff_t(lo), first + ptrdiff_t(hi), ByLogitDesc{});
  size_t keep = lo;
  while (keep < hi && (keep == 0 || mass_above < target)) mass_above += candidates_[keep++].weight;
  candidates_.resize(keep);
  // A canonical order for the draw, independent of nth_element's internals.
  std::sort(candidates_.begin(), candidates_.end(), ByLogitDesc{});
}

// Removes, without sorting, tokens that top-p is sure to drop. The tokens with weight < b form
// a tail of the ranking whose mass is < count * b; if that (plus what was dropped before) stays
// within the allowed tail mass, every one of them has >= target mass ranked above it. Halving b
// leaves a margin for rounding; a few rounds shrink a peaked 262k vocabulary to its head.
void Sampler::drop_certain_tail(double tail_budget) {
  double dropped = 0.0;
  for (int round = 0; round < 4 && candidates_.size() > 256; ++round) {
    const double bound = 0.5 * (tail_budget - dropped) / double(candidates_.size());
    if (!(bound > 0.0)) return;
    double mass = 0.0;
    const size_t before = candidates_.size();
    std::erase_if(candidates_, [&](const Candidate& c) {
      if (c.weight >= bound) return false;
      mass += c.weight;
      return true;
    });
    dropped += mass;
    if (candidates_.size() * 10 > before * 9) return;  // diminishing returns
  }
}

int32_t Sampler::draw() {
  double total = 0.0;
  for (const Candidate& c : candidates_) total += c.weight;
  // 53 random bits -> [0, 1): portable, unlike std::uniform_real_distribution.
  const double u = double(rng_() >> 11) * 0x1.0p-53 * total;
  double cumulative = 0.0;
  for (const Candidate& c : candidates_) {
    cumulative += c.weight;
    if (u < cumulative) return c.id;
  }
  return candidates_.front().id;  // unreachable: the last partial sum equals total
}

}  // namespace ug
