#include "server/openai_response.h"

#include <fmt/format.h>

#include <random>

#include "server/sse.h"

namespace ug::server {

using nlohmann::json;

namespace {

json nullable(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

json bytes_of(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(int(c));
  return b;
}

std::string random_suffix(size_t n) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string s;
  for (size_t i = 0; i < n; ++i) s += kChars[rng() % 62];
  return s;
}

json base_object(const ResponseContext& ctx, const char* object) {
  return {{"id", ctx.id},
          {"object", object},
          {"created", ctx.created},
          {"model", ctx.model},
          {"system_fingerprint", "unigemma"}};
}

}  // namespace

std::string new_tool_call_id() { return "call_" + random_suffix(24); }
std::string new_response_id(const std::string& prefix) { return prefix + random_suffix(24); }

json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}},
          {"completion_tokens_details", {{"reasoning_tokens", u.reasoning_tokens}}}};
}

json tool_call_json(const ToolCall& call, const std::string& id, int64_t index) {
  json j;
  if (index >= 0) j["index"] = index;
  j["id"] = id;
  j["type"] = "function";
  j["function"] = {{"name", call.name}, {"arguments", dump_json(call.arguments)}};
  return j;
}

json chat_logprobs_json(const std::vector<TokenLogprob>& tokens) {
  json content = json::array();
  for (const auto& t : tokens) {
    json top = json::array();
    for (const auto& [tok, lp] : t.top)
      top.push_back({{"token", tok}, {"logprob", lp}, {"bytes", bytes_of(tok)}});
    content.push_back({{"token", t.token},
                       {"logprob", t.logprob},
                       {"bytes", bytes_of(t.token)},
                       {"top_logprobs", top}});
  }
  return {{"content", content}, {"refusal", nullptr}};
}

json text_logprobs_json(const std::vector<TokenLogprob>& tokens, int64_t first_offset) {
  json toks = json::array(), lps = json::array(), tops = json::array(), offsets = json::array();
  int64_t offset = first_offset;
  for (const auto& t : tokens) {
    toks.push_back(t.token);
    lps.push_back(t.logprob);
    json top = json::object();
    for (const auto& [tok, lp] : t.top) top[tok] = lp;
    tops.push_back(top);
    offsets.push_back(offset);
    offset += int64_t(t.token.size());
  }
  return {
      {"tokens", toks}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

json chat_completion_json(const ResponseContext& ctx, const std::vector<ChatChoice>& choices,
                          const Usage& usage) {
  json out = base_object(ctx, "chat.completion");
  json list = json::array();
  for (const auto& c : choices) {
    json msg = {{"role", "assistant"}};
    msg["content"] = c.content.empty() && !c.tool_calls.empty() ? json(nullptr) : json(c.content);
    if (!c.reasoning.empty()) msg["reasoning_content"] = c.reasoning;
    if (!c.tool_calls.empty()) {
      json calls = json::array();
      for (size_t i = 0; i < c.tool_calls.size(); ++i)
        calls.push_back(tool_call_json(c.tool_calls[i], c.tool_call_ids[i]));
      msg["tool_calls"] = calls;
    }
    msg["refusal"] = nullptr;
    list.push_back(
        {{"index", c.index},
         {"message", msg},
         {"logprobs", c.logprobs_requested ? chat_logprobs_json(c.logprobs) : json(nullptr)},
         {"finish_reason", nullable(c.finish_reason)}});
  }
  out["choices"] = list;
  out["usage"] = usage_json(usage);
  return out;
}

json chat_chunk_json(const ResponseContext& ctx, int64_t index, json delta,
                     const std::string& finish_reason, const json& logprobs, bool include_usage) {
  json out = base_object(ctx, "chat.completion.chunk");
  out["choices"] = json::array({{{"index", index},
                                 {"delta", std::move(delta)},
                                 {"logprobs", logprobs},
                                 {"finish_reason", nullable(finish_reason)}}});
  if (include_usage) out["usage"] = nullptr;
  return out;
}

json chat_usage_chunk_json(const ResponseContext& ctx, const Usage& usage) {
  json out = base_object(ctx, "chat.completion.chunk");
  out["choices"] = json::array();
  out["usage"] = usage_json(usage);
  return out;
}

json text_completion_json(const ResponseContext& ctx, const std::vector<TextChoice>& choices,
                          const Usage& usage) {
  json out = base_object(ctx, "text_completion");
  json list = json::array();
  for (const auto& c : choices)
    list.push_back(
        {{"index", c.index},
         {"text", c.text},
         {"logprobs",
          c.logprobs_requested ? text_logprobs_json(c.logprobs, c.text_offset) : json(nullptr)},
         {"finish_reason", nullable(c.finish_reason)}});
  out["choices"] = list;
  out["usage"] = usage_json(usage);
  return out;
}

json text_chunk_json(const ResponseContext& ctx, int64_t index, const std::string& text,
                     const std::string& finish_reason, const json& logprobs, bool include_usage) {
  json out = base_object(ctx, "text_completion");
  out["choices"] = json::array({{{"index", index},
                                 {"text", text},
                                 {"logprobs", logprobs},
                                 {"finish_reason", nullable(finish_reason)}}});
  if (include_usage) out["usage"] = nullptr;
  return out;
}

json text_usage_chunk_json(const ResponseContext& ctx, const Usage& usage) {
  json out = base_object(ctx, "text_completion");
  out["choices"] = json::array();
  out["usage"] = usage_json(usage);
  return out;
}

json model_json(const std::string& id, int64_t created) {
  return {{"id", id}, {"object", "model"}, {"created", created}, {"owned_by", "unigemma"}};
}

json model_list_json(const std::string& id, int64_t created) {
  return {{"object", "list"}, {"data", json::array({model_json(id, created)})}};
}

}  // namespace ug::server
