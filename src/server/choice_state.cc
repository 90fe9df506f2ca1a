#include "server/choice_state.h"

#include <algorithm>

namespace ug::server {

std::string api_finish_reason(FinishReason r, bool has_tool_calls) {
  if (has_tool_calls) return "tool_calls";
  switch (r) {
    case FinishReason::Stop:
    case FinishReason::StopString:
      return "stop";
    case FinishReason::Length:
    case FinishReason::ContextFull:
      return "length";
    case FinishReason::Cancelled:
      return "cancelled";
  }
  return "stop";
}

std::optional<ApiError> sequence_error(const SequenceResult& r) {
  if (r.error.empty() && r.finish != FinishReason::Cancelled) return std::nullopt;
  if (r.error == "timeout")
    return ApiError(504, "the request timed out (server --timeout-s) before generation finished",
                    "", "timeout");
  if (r.error == "scheduler shut down" || r.error.empty())
    return ApiError(503, "the server is shutting down; the request was cancelled", "",
                    "server_shutdown");
  return ApiError(500, "generation failed: " + r.error, "", "generation_failed");
}

void LatencyTracker::token(const SequenceEvent& e) {
  if (!metrics_ || e.choice >= last_.size()) return;
  auto& last = last_[e.choice];
  if (last)
    metrics_->inter_token_latency(std::chrono::duration<double>(e.at - *last).count());
  else
    metrics_->time_to_first_token(std::chrono::duration<double>(e.at - arrival_).count());
  last = e.at;
}

void LatencyTracker::done(const SequenceEvent& e) {
  if (!metrics_) return;
  metrics_->queue_time(e.result.queue_seconds);
  metrics_->request_latency(std::chrono::duration<double>(e.at - arrival_).count());
}

std::optional<TokenLogprob> token_logprob(const TokenEvent& ev, const Backend& backend) {
  const auto& stops = backend.info().stop_ids;
  if (std::find(stops.begin(), stops.end(), ev.id) != stops.end()) return std::nullopt;
  TokenLogprob t{.token = backend.token_text(ev.id), .logprob = ev.logprob};
  for (const auto& [id, lp] : ev.top) t.top.emplace_back(backend.token_text(id), lp);
  return t;
}

}  // namespace ug::server
