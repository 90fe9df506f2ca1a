// OpenAI response objects: chat.completion, chat.completion.chunk, text_completion (and its
// chunks), usage, logprobs, tool_calls, the model list. Pure functions of their inputs (no engine
// types), so the exact shapes are unit-tested on their own.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/response_parser.h"

namespace ug::server {

struct ResponseContext {
  std::string id;       // "chatcmpl-..." / "cmpl-..."
  int64_t created = 0;  // unix seconds
  std::string model;
};

struct TokenLogprob {
  std::string token;  // the token's text
  float logprob = 0;
  std::vector<std::pair<std::string, float>> top;  // alternatives, best first
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;     // prompt tokens served from the prefix cache
  int64_t reasoning_tokens = 0;  // completion tokens spent in thought spans
};

struct ChatChoice {
  int64_t index = 0;
  std::string content;
  std::string reasoning;  // -> message.reasoning_content (omitted when empty)
  std::vector<ToolCall> tool_calls;
  std::vector<std::string> tool_call_ids;  // one per tool call
  std::string finish_reason;               // "stop", "length", "tool_calls"
  bool logprobs_requested = false;
  std::vector<TokenLogprob> logprobs;
};

struct TextChoice {
  int64_t index = 0;
  std::string text;
  std::string finish_reason;
  bool logprobs_requested = false;
  std::vector<TokenLogprob> logprobs;
  int64_t text_offset =
      0;  // offset of the first generated token in `text` (echo puts the prompt first)
};

nlohmann::json usage_json(const Usage& u);

// {"id", "type": "function", "function": {"name", "arguments": "<JSON text>"}}; index >= 0 adds
// "index" (streaming deltas).
nlohmann::json tool_call_json(const ToolCall& call, const std::string& id, int64_t index = -1);
// A fresh "call_..." id.
std::string new_tool_call_id();
// A fresh response id with the given prefix ("chatcmpl-", "cmpl-").
std::string new_response_id(const std::string& prefix);

// Chat-format logprobs: {"content": [{token, logprob, bytes, top_logprobs: [...]}], "refusal":
// null}.
nlohmann::json chat_logprobs_json(const std::vector<TokenLogprob>& tokens);
// Legacy completions logprobs: {tokens, token_logprobs, top_logprobs, text_offset}.
nlohmann::json text_logprobs_json(const std::vector<TokenLogprob>& tokens, int64_t first_offset);

nlohmann::json chat_completion_json(const ResponseContext& ctx,
                                    const std::vector<ChatChoice>& choices, const Usage& usage);
// One chat.completion.chunk with a single choice; finish_reason "" -> null. With include_usage
// every chunk carries "usage": null (the final usage chunk is chat_usage_chunk).
nlohmann::json chat_chunk_json(const ResponseContext& ctx, int64_t index, nlohmann::json delta,
                               const std::string& finish_reason, const nlohmann::json& logprobs,
                               bool include_usage);
nlohmann::json chat_usage_chunk_json(const ResponseContext& ctx, const Usage& usage);

nlohmann::json text_completion_json(const ResponseContext& ctx,
                                    const std::vector<TextChoice>& choices, const Usage& usage);
nlohmann::json text_chunk_json(const ResponseContext& ctx, int64_t index, const std::string& text,
                               const std::string& finish_reason, const nlohmann::json& logprobs,
                               bool include_usage);
nlohmann::json text_usage_chunk_json(const ResponseContext& ctx, const Usage& usage);

nlohmann::json model_json(const std::string& id, int64_t created);
nlohmann::json model_list_json(const std::string& id, int64_t created);

}  // namespace ug::server
