#include "server/chat_assembler.h"

namespace ug::server {

using nlohmann::json;

ChatAssembler::ChatAssembler(Backend& backend, Metrics* metrics, ResponseContext ctx,
                             size_t choices, Options options,
                             std::chrono::steady_clock::time_point arrival)
    : backend_(backend),
      metrics_(metrics),
      ctx_(std::move(ctx)),
      options_(std::move(options)),
      latency_(metrics, arrival, choices) {
  for (size_t i = 0; i < choices; ++i) {
    choices_.emplace_back(options_.parse_tool_calls);
    Choice& c = choices_.back();
    c.result.index = int64_t(i);
    c.result.logprobs_requested = options_.logprobs;
    if (!options_.forced_prefix.empty())
      (void)c.parser.push(options_.forced_prefix);  // opens a tool call
  }
}

// Adds a parser delta to the choice and, when streaming, emits the chunk for it (finish != "": the
// last one).
void ChatAssembler::apply(Choice& c, OutputParser::Delta delta, std::vector<json>& out,
                          const std::string& finish) {
  json d = json::object();
  if (!c.role_sent) {
    d["role"] = "assistant";
    d["content"] = "";
    c.role_sent = true;
  }
  if (!delta.reasoning.empty()) {
    c.result.reasoning += delta.reasoning;
    d["reasoning_content"] = delta.reasoning;
  }
  if (!delta.content.empty()) {
    c.result.content += delta.content;
    d["content"] = delta.content;
  }
  if (!delta.tool_calls.empty()) {
    json calls = json::array();
    for (auto& call : delta.tool_calls) {
      std::string id = new_tool_call_id();
      calls.push_back(tool_call_json(call, id, int64_t(c.result.tool_calls.size())));
      c.result.tool_calls.push_back(std::move(call));
      c.result.tool_call_ids.push_back(id);
    }
    d["tool_calls"] = calls;
  }
  if (!options_.stream) return;
  const bool has_text = d.size() > 0;
  if (!has_text && finish.empty()) return;  // nothing to say yet; logprobs wait for the next chunk
  json lp = nullptr;
  if (options_.logprobs && (!c.pending_logprobs.empty() || !finish.empty())) {
    lp = chat_logprobs_json(c.pending_logprobs);
    c.pending_logprobs.clear();
  }
  if (!finish.empty() && has_text) {  // text and the end in separate chunks, as OpenAI does
    out.push_back(chat_chunk_json(ctx_, c.result.index, d, "", lp, options_.include_usage));
    d = json::object();
    lp = options_.logprobs ? chat_logprobs_json({}) : json(nullptr);
  }
  out.push_back(chat_chunk_json(ctx_, c.result.index, d, finish, lp, options_.include_usage));
}

std::vector<json> ChatAssembler::consume(const std::vector<SequenceEvent>& events) {
  std::vector<json> out;
  for (const SequenceEvent& e : events) {
    if (e.choice >= choices_.size()) continue;
    Choice& c = choices_[e.choice];
    if (!e.done) {
      latency_.token(e);
      if (options_.logprobs)
        if (auto lp = token_logprob(e.token, backend_)) {
          c.result.logprobs.push_back(*lp);
          c.pending_logprobs.push_back(std::move(*lp));
        }
      OutputParser::Delta d = c.parser.push(e.token.text);
      if (c.parser.in_reasoning()) ++c.reasoning_tokens;
      apply(c, std::move(d), out, "");
      continue;
    }
    latency_.done(e);
    c.done = e.result;
    if (auto err = sequence_error(e.result)) {
      if (!error_) error_ = err;
      continue;
    }
    OutputParser::Delta d = c.parser.push(e.result.tail_text);
    OutputParser::Delta tail = c.parser.finish();
    d.reasoning += tail.reasoning;
    d.content += tail.content;
    for (auto& call : tail.tool_calls) d.tool_calls.push_back(std::move(call));
    const bool calls = !c.result.tool_calls.empty() || !d.tool_calls.empty();
    c.result.finish_reason = api_finish_reason(e.result.finish, calls);
    apply(c, std::move(d), out, c.result.finish_reason);
  }
  return out;
}

Usage ChatAssembler::usage() const {
  Usage u;
  for (const Choice& c : choices_) {
    u.prompt_tokens = std::max(u.prompt_tokens, c.done.prompt_tokens);
    u.cached_tokens = std::max(u.cached_tokens, c.done.cached_prompt_tokens);
    u.completion_tokens += c.done.generated_tokens;
    u.reasoning_tokens += c.reasoning_tokens;
  }
  return u;
}

std::vector<json> ChatAssembler::stream_tail() const {
  if (!options_.include_usage) return {};
  return {chat_usage_chunk_json(ctx_, usage())};
}

json ChatAssembler::response() const {
  std::vector<ChatChoice> list;
  for (const Choice& c : choices_) list.push_back(c.result);
  return chat_completion_json(ctx_, list, usage());
}

}  // namespace ug::server
