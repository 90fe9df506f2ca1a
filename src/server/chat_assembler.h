// Builds a chat completion from the events of its sequences: each choice's text goes through an
// OutputParser (reasoning_content / content / tool_calls), logprobs and usage are collected, and in
// streaming mode every event turns into chat.completion.chunk objects as it arrives.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "server/choice_state.h"
#include "server/output_parser.h"

namespace ug::server {

class ChatAssembler final : public ResponseAssembler {
 public:
  struct Options {
    bool stream = false;
    bool include_usage = false;
    bool logprobs = false;
    bool parse_tool_calls = false;
    std::string forced_prefix;  // already in the prompt; parsed as the start of every reply
  };
  ChatAssembler(Backend& backend, Metrics* metrics, ResponseContext ctx, size_t choices,
                Options options, std::chrono::steady_clock::time_point arrival);

  // Consumes events; in streaming mode returns the chunks they produce.
  std::vector<nlohmann::json> consume(const std::vector<SequenceEvent>& events) override;
  // Streaming, after every sequence ended: the usage chunk when requested.
  std::vector<nlohmann::json> stream_tail() const override;
  // Non-streaming: the chat.completion object.
  nlohmann::json response() const override;
  // The first sequence failure (timeout, shutdown, engine error), if any.
  const std::optional<ApiError>& error() const override { return error_; }
  Usage usage() const override;

 private:
  struct Choice {
    explicit Choice(bool tools) : parser(tools) {}
    OutputParser parser;
    ChatChoice result;
    bool role_sent = false;
    std::vector<TokenLogprob> pending_logprobs;  // not yet attached to a chunk
    int64_t reasoning_tokens = 0;
    SequenceResult done;
  };
  void apply(Choice& c, OutputParser::Delta delta, std::vector<nlohmann::json>& out,
             const std::string& finish);

  Backend& backend_;
  Metrics* metrics_;
  ResponseContext ctx_;
  Options options_;
  LatencyTracker latency_;
  std::vector<Choice> choices_;
  std::optional<ApiError> error_;
};

}  // namespace ug::server
