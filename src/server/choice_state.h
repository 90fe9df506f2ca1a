// Bookkeeping shared by the chat and text assemblers: per-choice logprobs, token timing for the
// latency metrics, usage totals and the mapping of a sequence's end (finish reason or error) to the
// API.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "server/api_error.h"
#include "server/backend.h"
#include "server/metrics.h"
#include "server/openai_response.h"
#include "server/sequence_group.h"

namespace ug::server {

// "stop", "length" (Length, ContextFull); tool calls -> "tool_calls".
std::string api_finish_reason(FinishReason r, bool has_tool_calls);

// The error a failed / cancelled sequence maps to (timeout 504, shutdown 503, other failures 500),
// or nullopt when it ended normally.
std::optional<ApiError> sequence_error(const SequenceResult& r);

class LatencyTracker {
 public:
  LatencyTracker(Metrics* metrics, std::chrono::steady_clock::time_point arrival, size_t choices)
      : metrics_(metrics), arrival_(arrival), last_(choices) {}
  void token(const SequenceEvent& e);
  void done(const SequenceEvent& e);

 private:
  Metrics* metrics_;
  std::chrono::steady_clock::time_point arrival_;
  std::vector<std::optional<std::chrono::steady_clock::time_point>> last_;
};

// What the HTTP layer needs from ChatAssembler / TextAssembler.
class ResponseAssembler {
 public:
  virtual ~ResponseAssembler() = default;
  // Consumes events; in streaming mode returns the chunks they produce.
  virtual std::vector<nlohmann::json> consume(const std::vector<SequenceEvent>& events) = 0;
  // Streaming, after every sequence ended: the usage chunk when requested.
  virtual std::vector<nlohmann::json> stream_tail() const = 0;
  // Non-streaming: the whole response object.
  virtual nlohmann::json response() const = 0;
  // The first sequence failure (timeout, shutdown, engine error), if any.
  virtual const std::optional<ApiError>& error() const = 0;
  virtual Usage usage() const = 0;
};

// Converts a token event's logprob data (when requested) to a TokenLogprob; nullopt for stop ids.
std::optional<TokenLogprob> token_logprob(const TokenEvent& ev, const Backend& backend);

}  // namespace ug::server
