// What the HTTP layer needs from the engine, as an interface: prompt building (chat template,
// tokenizer, media assembly), the scheduler's submit/cancel/stats, and token texts for logprobs.
// EngineBackend (engine_backend.h) is the real implementation; the server tests drive the whole
// HTTP layer with a scripted fake, without a model.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "runtime/multimodal_prompt.h"
#include "runtime/prompt_input.h"
#include "runtime/scheduler.h"
#include "server/event_bus.h"
#include "server/request.h"
#include "tokenizer/chat_template.h"

namespace ug::server {

struct BackendInfo {
  int64_t context_length = 0;       // tokens per sequence (prompt + completion)
  SamplingParams default_sampling;  // from generation_config.json
  std::vector<int32_t> stop_ids;    // eos ids + <turn|>
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const BackendInfo& info() const = 0;
  // Renders the chat template, appends `forced_prefix`, tokenizes and expands the media
  // placeholders. Throws ug::Error for input the model cannot take (broken media, placeholder count
  // mismatch, ...).
  virtual PromptInput chat_prompt(const nlohmann::json& messages,
                                  const ChatTemplateOptions& options,
                                  const std::string& forced_prefix,
                                  std::span<const MediaSource> media) = 0;
  // A raw completion prompt (text with BOS as the tokenizer wants it, or the given ids).
  virtual PromptInput text_prompt(const CompletionPrompt& prompt) = 0;
  // The text of one token (for logprobs).
  virtual std::string token_text(int32_t id) const = 0;
  // Scheduler::submit / cancel / stats semantics (QueueFull when the queue is full, ug::Error when
  // invalid).
  virtual uint64_t submit(SequenceParams params, SequenceCallbacks callbacks) = 0;
  virtual void cancel(uint64_t id) = 0;
  virtual SchedulerStats stats() const = 0;
  // Where the scheduler wakes the waiters of request events once per step (event_bus.h); nullptr: callbacks wake
  // their request's waiter themselves.
  virtual std::shared_ptr<EventBus> event_bus() { return nullptr; }
};

}  // namespace ug::server
