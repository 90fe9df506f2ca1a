// Parsed and validated OpenAI requests (POST /v1/chat/completions, /v1/completions). Parsing checks
// every field's type and range, rejects unknown fields (docs/server.md "Validation"), decodes media
// into MediaSources and reduces the messages to what render_chat needs. Errors: ApiError (400
// naming the field).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "runtime/json_constraint/json_grammar.h"
#include "runtime/multimodal_prompt.h"
#include "server/media_parts.h"

namespace ug::server {

struct RequestLimits {
  int64_t max_n = 8;      // choices per request
  int64_t max_stop = 16;  // stop strings
  int64_t max_messages = 4096;
  MediaPolicy media;
};

// Fields shared by both endpoints. Unset sampling fields keep the model's generation_config
// defaults.
struct GenerationOptions {
  std::optional<int64_t> max_tokens;
  std::optional<double> temperature, top_p, min_p, presence_penalty, frequency_penalty,
      repetition_penalty;
  std::optional<int64_t> top_k;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  int64_t n = 1;
  int32_t top_logprobs = -1;  // -1: no logprobs; 0..20 alternatives per token
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  // response_format json_object / json_schema, compiled (null: text).
  std::shared_ptr<const JsonGrammar> json;
};

struct ChatRequest {
  std::string model;
  GenerationOptions gen;
  nlohmann::json
      messages;  // for render_chat: media parts reduced to {"type":"image"|"audio"|"video"}
  std::vector<MediaSource> media;  // one per media part, in message order (= placeholder order)
  nlohmann::json tools =
      nlohmann::json::array();  // declared to the model (empty for tool_choice "none")
  bool enable_thinking = false;
  std::string
      forced_prefix;  // tool_choice "required" / named: the reply is made to start with this
  bool parse_tool_calls =
      false;  // tools were declared: tool-call DSL in the output becomes tool_calls
};

struct CompletionPrompt {
  std::string text;          // used when ids is empty
  std::vector<int32_t> ids;  // a pre-tokenized prompt
};

struct CompletionRequest {
  std::string model;
  GenerationOptions gen;
  std::vector<CompletionPrompt> prompts;  // choice index = prompt index * n + j
  bool echo = false;
};

ChatRequest parse_chat_request(const nlohmann::json& body, const RequestLimits& limits);
CompletionRequest parse_completion_request(const nlohmann::json& body, const RequestLimits& limits);

// Parses a body, mapping malformed JSON (and a non-object top level) to a 400.
nlohmann::json parse_body(std::string_view body);

}  // namespace ug::server
