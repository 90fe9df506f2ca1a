// Builds a legacy text completion (POST /v1/completions) from the events of its sequences: raw text
// (no reasoning / tool-call parsing), optional echo of the prompt, logprobs in the legacy shape,
// streaming text_completion chunks.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "server/choice_state.h"

namespace ug::server {

class TextAssembler final : public ResponseAssembler {
 public:
  struct Options {
    bool stream = false;
    bool include_usage = false;
    bool logprobs = false;
    int64_t n = 1;  // choices per prompt (prompt tokens count once per prompt)
  };
  // echo_texts: per choice, the prompt text to put in front of the completion ("" = no echo).
  TextAssembler(Backend& backend, Metrics* metrics, ResponseContext ctx,
                std::vector<std::string> echo_texts, Options options,
                std::chrono::steady_clock::time_point arrival);

  std::vector<nlohmann::json> consume(const std::vector<SequenceEvent>& events) override;
  std::vector<nlohmann::json> stream_tail() const override;
  nlohmann::json response() const override;
  const std::optional<ApiError>& error() const override { return error_; }
  Usage usage() const override;

 private:
  struct Choice {
    TextChoice result;
    bool echo_sent = false;
    std::string echo;
    std::vector<TokenLogprob> pending_logprobs;
    SequenceResult done;
  };
  void emit(Choice& c, const std::string& text, const std::string& finish,
            std::vector<nlohmann::json>& out);

  Backend& backend_;
  ResponseContext ctx_;
  Options options_;
  LatencyTracker latency_;
  std::vector<Choice> choices_;
  std::optional<ApiError> error_;
};

}  // namespace ug::server
