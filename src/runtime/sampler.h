// Next-token sampling from float32 logits, following HF transformers `generate` semantics.
//
// Per call, in this order (HF's logits-processor order):
//   1. repetition penalty over prompt + generated ids (HF RepetitionPenaltyLogitsProcessor:
//      logit < 0 -> logit * p, else logit / p; each distinct id once),
//   2. presence / frequency penalties over generated ids only (OpenAI: logit -= presence if
//      count > 0, logit -= frequency * count),
//   3. suppress_tokens -> -inf,
//   4. greedy (temperature == 0): argmax, ties -> lowest id (torch.argmax first occurrence);
//      otherwise temperature, top-k (ties with the k-th value kept, as HF), top-p (smallest
//      set with cumulative prob >= top_p, at least one kept), min-p (keep prob >= min_p * max
//      prob), then one draw from the softmax of what is left.
//
// Determinism: a Sampler owns a std::mt19937_64 seeded with params.seed and draws exactly one
// 64-bit number per non-greedy call (none for greedy). The draw walks the surviving tokens in a
// canonical order (rank = logit desc, id asc; id order when no filter needed ranking) and maps
// the 64-bit draw to [0, 1) by bit shifting, not std::uniform_real_distribution (whose algorithm
// varies between standard libraries). So the same seed and the same sequence of logits give the
// same tokens on every run and thread count; across platforms only libm's expf rounding could
// differ.
//
// Cost per step over a 262k vocabulary: O(V) scans (NaN check, top-k heap, collect) and, with
// top_k = 0 and top_p < 1, O(V) expf plus a rank bisection; never a full sort of the vocabulary.
// HF `do_sample = false` maps to temperature = 0.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "model/decoder_backend.h"

namespace ug {

struct SamplingParams {
  float temperature = 1.0f;         // 0 -> greedy
  int32_t top_k = 64;               // 0 -> disabled
  float top_p = 0.95f;              // 1 -> disabled
  float min_p = 0.0f;               // 0 -> disabled
  float repetition_penalty = 1.0f;  // 1 -> disabled
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint64_t seed = 0;
  std::vector<int32_t> suppress_tokens;  // never sampled (generation_config suppress_tokens)

  // Throws ug::Error naming the field, the allowed range and the value found.
  void validate() const;
};

// One Sampler per sequence: it holds the RNG stream. -inf logits are allowed (masked ids).
class Sampler {
 public:
  // Validates params and checks suppress_tokens against vocab_size.
  Sampler(SamplingParams params, int32_t vocab_size);

  // logits: [vocab] float32, used as scratch (penalties and masks are applied in place).
  // prompt_ids + generated_ids form the history for the repetition penalty; generated_ids
  // alone drive presence / frequency penalties. Returns the chosen id.
  // Throws ug::Error on a size mismatch, NaN or +inf logits, out-of-range history ids, or
  // when every token is masked.
  int32_t sample(std::span<float> logits, std::span<const int32_t> prompt_ids,
                 std::span<const int32_t> generated_ids);

  // The same draw from a top-k sampler's candidates found elsewhere (on the GPU: DecoderBackend's TopLogits):
  // every logit >= the k-th largest of the row (ties kept), suppress_tokens already left out, any order. Gives
  // what sample() gives on the whole row. Only for params with top_k > 0, temperature > 0 and no penalties
  // (they would change the ranking); throws ug::Error otherwise or on bad ids / NaN / +inf / no candidate.
  int32_t sample_candidates(std::span<const int32_t> ids, std::span<const float> logits);
  // What a backend returned for a top-k request (model/decoder_backend.h): its candidates, or the whole row when
  // they overflowed (then used as scratch, as sample() does); NaN / +inf there is the same error as in sample().
  int32_t sample_top(TopLogits& top);
  // Whether sample_candidates may be used with these params.
  bool samples_from_top_k() const;
  // Greedy without penalties: a backend's argmax (skipping suppress_tokens) is this sampler's choice.
  bool argmax_is_enough() const;

  const SamplingParams& params() const { return params_; }
  int32_t vocab_size() const { return vocab_size_; }

 private:
  struct Candidate {
    float logit;
    float weight;  // exp((logit - max) / T), filled by compute_weights
    int32_t id;
  };

  void check_inputs(std::span<const float> logits, std::span<const int32_t> prompt_ids,
                    std::span<const int32_t> generated_ids) const;
  void apply_repetition_penalty(std::span<float> logits, std::span<const int32_t> prompt_ids,
                                std::span<const int32_t> generated_ids);
  void apply_presence_frequency(std::span<float> logits, std::span<const int32_t> generated_ids);
  int32_t greedy(std::span<const float> logits) const;
  void collect_candidates(std::span<const float> logits);
  void select_top_k(std::span<const float> logits);
  int32_t filter_and_draw();
  void compute_weights();
  void apply_top_p();
  void drop_certain_tail(double tail_budget);
  int32_t draw();

  SamplingParams params_;
  int32_t vocab_size_;
  std::mt19937_64 rng_;
  // Scratch reused across calls so a step allocates nothing at steady state.
  std::vector<Candidate> candidates_;
  std::vector<float> heap_;     // top-k selection
  std::vector<uint32_t> seen_;  // repetition penalty: stamp_ marks ids already penalized
  uint32_t stamp_ = 0;
  std::vector<int32_t> counts_;  // presence / frequency: per-id counts, reset after use
};

}  // namespace ug
