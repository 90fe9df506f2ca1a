// Continuous batching over many sequences (docs/DESIGN.md, vLLM v1 style): every step spends a token budget
// on decode tokens of running sequences first, then on prefill chunks of waiting/prefilling ones, all in one
// batched decoder call; no separate prefill and decode phases. A prefix cache keyed by hashes of token blocks
// (media content hashes included) lets a request that repeats an earlier conversation skip its prefill
// (runtime/prefix_cache.h: rollback within the ring slack, entries taken over by the next turn or cloned for
// other branches; a request can also clone the KV of a running sequence that shares its beginning).
// Batched results are bitwise those of the same sequence run alone (Decoder::forward_batch).
// One background thread runs the steps; callbacks are called on it and must return quickly.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "runtime/generator.h"
#include "runtime/json_constraint/output_constraint.h"
#include "runtime/prompt_input.h"
#include "runtime/sampler.h"

namespace ug {

struct Engine;

struct SchedulerOptions {
  int64_t max_step_tokens = 512;   // token budget of one step (decode tokens + prefill chunk tokens); prefill
                                   // gets at least min(64, this) and the first chunk of a step may exceed it
                                   // to take a whole bidirectional block
  int64_t max_running = 64;        // sequences admitted at once
  int64_t max_waiting = 256;       // queued requests beyond which submit() throws QueueFull
  int64_t max_context = 0;         // per sequence; 0 = the model's max_position_embeddings
  int64_t kv_budget_bytes = 0;     // KV memory for all sequences + the prefix cache; 0 = automatic (half of
                                   // the memory available when the scheduler starts)
  bool prefix_cache = true;
  // Extra sliding-window ring slots per sequence (KvCache): how far a cached conversation can roll back
  // (e.g. a reply that the chat template re-renders differently) and still be reused. Memory: slack x
  // the sliding layers' per-token KV (12B, f32: 640 KiB/token over 40 layers, so 1024 slack = 640 MiB
  // per sequence of more than `window` tokens). 0 disables rollback beyond one token.
  int64_t ring_slack = 1024;
  // Called on the scheduler thread after every iteration of its loop that ran callbacks (on_token / on_done).
  // A caller whose callbacks only queue events wakes its consumers here: once per step instead of once per token.
  std::function<void()> after_callbacks;
};

// A sequence holds reserved KV for min(prompt + max_new_tokens, max_context) tokens (KvCache::bytes_for)
// from admission to its end; a request whose reservation exceeds the whole budget is rejected by submit().
struct SequenceParams {
  PromptInput prompt;
  SamplingParams sampling;
  int64_t max_new_tokens = 256;
  std::vector<int32_t> stop_ids;
  std::vector<std::string> stop_strings;
  // -1: no logprobs; 0..20: chosen token's logprob plus that many alternatives. Log-probabilities are the
  // log-softmax of the model's final logits (after the final softcap) before any sampling step (penalties,
  // temperature, top-k/p, min-p), as OpenAI reports them.
  int32_t top_logprobs = -1;
  // response_format json_object / json_schema: tokens that would leave the allowed JSON get -inf
  // before sampling (after the logprobs above are taken); stop ids only once the value is complete.
  OutputConstraint constraint;
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

// One per sampled token, including a stop id (whose text is empty).
struct TokenEvent {
  int32_t id = -1;
  std::string text;  // UTF-8-complete text delta (may be empty; text that might start a stop string is held)
  float logprob = 0;                                // log-softmax of the sampled token (when requested)
  std::vector<std::pair<int32_t, float>> top;       // top alternatives, best first (when requested)
};

struct SequenceResult {
  FinishReason finish = FinishReason::Length;
  std::string error;                 // non-empty: the sequence failed (finish is then Cancelled)
  std::string tail_text;             // text held back at the end and not yet delivered by on_token
  int64_t prompt_tokens = 0;
  int64_t cached_prompt_tokens = 0;  // prompt tokens served from the prefix cache (not recomputed)
  int64_t generated_tokens = 0;
  double queue_seconds = 0, ttft_seconds = 0, total_seconds = 0;
};

struct SequenceCallbacks {
  std::function<void(const TokenEvent&)> on_token;
  std::function<void(const SequenceResult&)> on_done;  // exactly once per accepted sequence
};

struct SchedulerStats {
  int64_t running = 0, waiting = 0;
  int64_t kv_bytes_used = 0, kv_bytes_budget = 0;  // used = sequences + prefix cache
  int64_t kv_bytes_sequences = 0;                   // KV held by live (running) sequences
  int64_t kv_bytes_prefix_cache = 0;                // KV held by prefix-cache entries
  int64_t prefix_cache_entries = 0;
  int64_t prompt_tokens_total = 0, prompt_tokens_cached = 0;  // since start
  int64_t generated_tokens_total = 0;
  int64_t steps = 0;
  // Wall time of the scheduler's iterations that ran a step (admission, the batch, the forward pass, sampling,
  // streaming) and the part of it inside Decoder::forward_batch; the rest is host work the accelerator waits on.
  double step_seconds = 0, forward_seconds = 0;
  // The host part by phase: dropping ended sequences and admitting waiting ones, building the batch, sampling,
  // streaming (detokenizer, stop strings, callbacks and their wake-ups, finishing).
  double admit_seconds = 0, batch_seconds = 0, sample_seconds = 0, stream_seconds = 0;
};

// Thrown by submit() when the waiting queue is full (the server answers 429 + Retry-After).
struct QueueFull : Error {
  using Error::Error;
};

class Scheduler {
 public:
  Scheduler(Engine& engine, SchedulerOptions options);
  ~Scheduler();  // cancels everything still running, joins the thread
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Validates (prompt within context, sampling params, ids in vocabulary: ug::Error otherwise) and queues.
  uint64_t submit(SequenceParams params, SequenceCallbacks callbacks);
  // Stops a sequence (client gone): its KV memory is released before the next step; on_done(Cancelled).
  void cancel(uint64_t id);
  // Stop admitting; finish_running: let running sequences end normally, otherwise cancel them. Blocks.
  void shutdown(bool finish_running);

  SchedulerStats stats() const;
  const Engine& engine() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ug
