// Token generation on one sequence: prefill the prompt into the KV cache, then decode step by step
// with sampling, stop ids, stop strings, a token budget and cooperative cancellation (Ctrl-C).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model/decoder.h"
#include "runtime/json_constraint/json_constraint.h"
#include "runtime/sampler.h"

namespace ug {

class Tokenizer;

enum class FinishReason { Stop, StopString, Length, Cancelled, ContextFull };
std::string_view finish_reason_name(FinishReason r);

struct GenerationRequest {
  std::vector<int32_t> prompt;          // new tokens, after `history` (history tokens not yet in the cache go first)
  SamplingParams sampling;
  int64_t max_new_tokens = 256;
  std::vector<int32_t> stop_ids;        // e.g. generation_config eos ids
  std::vector<std::string> stop_strings;
  std::span<const int32_t> block_ids;   // optional, per prompt token (multimodal blocks)
  std::span<const float* const> embeddings_override;  // optional, per prompt token
  JsonConstraint* constraint = nullptr;  // optional: response_format JSON (JsonConstraintFactory)
};

struct GenerationStats {
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  double prefill_seconds = 0;
  double decode_seconds = 0;
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated ids, including the stop id when one ended the reply
  std::string text;             // decoded text, stop string excluded (empty without a tokenizer)
  FinishReason finish = FinishReason::Length;
  GenerationStats stats;
};

struct GenerationCallbacks {
  std::function<void(std::string_view text)> on_text;  // streamed, UTF-8 complete pieces
  std::function<void(int32_t id)> on_token;
  const std::atomic<bool>* cancel = nullptr;           // set -> stop after the current step
};

class Generator {
 public:
  // tokenizer may be null (ids only: no text, no stop strings).
  Generator(Decoder& decoder, const Tokenizer* tokenizer);

  // `history` is every token already in `cache` (for the repetition penalty); it is extended with the
  // prompt and the generated tokens.
  GenerationResult generate(const GenerationRequest& request, KvCache& cache, std::vector<int32_t>& history,
                            const GenerationCallbacks& callbacks = {});

 private:
  Decoder& decoder_;
  const Tokenizer* tokenizer_;
};

}  // namespace ug
