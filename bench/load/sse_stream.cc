#include "load/sse_stream.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace ug::load {

using nlohmann::json;

void SseStream::fail(std::string message) {
  if (st_.error.empty()) st_.error = std::move(message);
}

void SseStream::feed(std::string_view bytes, double t) {
  pending_.append(bytes);
  size_t start = 0;
  for (size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string_view l(pending_.data() + start, nl - start);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    line(l, t);
  }
  pending_.erase(0, start);
}

// One SSE line: a blank line ends the event; `:` starts a comment (keep-alive); only `data`
// matters.
void SseStream::line(std::string_view l, double t) {
  if (l.empty()) {
    if (has_data_) event(data_, t);
    data_.clear();
    has_data_ = false;
    return;
  }
  if (l.front() == ':') return;
  if (l.substr(0, 5) != "data:") return;  // event:, id:, retry: carry nothing here
  l.remove_prefix(5);
  if (!l.empty() && l.front() == ' ') l.remove_prefix(1);
  if (has_data_) data_ += '\n';
  data_.append(l);
  has_data_ = true;
}

void SseStream::event(const std::string& data, double t) {
  if (st_.done) return fail("an event after data: [DONE]");
  if (data == "[DONE]") {
    st_.done = true;
    return;
  }
  ++st_.events;
  json j = json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return fail(fmt::format("event {}: not a JSON object: {:.80}", st_.events, data));
  if (j.contains("error")) {
    const json& e = j["error"];
    std::string msg = e.is_object() && e.value("message", json()).is_string()
                          ? e["message"].get<std::string>()
                          : e.dump();
    return fail("error event: " + msg);
  }
  if (const auto u = j.find("usage"); u != j.end() && u->is_object()) {
    st_.prompt_tokens = u->value("prompt_tokens", int64_t(-1));
    st_.completion_tokens = u->value("completion_tokens", int64_t(-1));
    if (const auto d = u->find("prompt_tokens_details"); d != u->end() && d->is_object())
      st_.cached_tokens = d->value("cached_tokens", int64_t(0));
  }
  const auto choices = j.find("choices");
  if (choices == j.end() || !choices->is_array())
    return fail(fmt::format("event {}: no `choices` array: {:.80}", st_.events, data));
  for (const json& c : *choices) {
    if (!c.is_object() || !c.contains("delta") || !c["delta"].is_object())
      return fail(fmt::format("event {}: a choice without `delta`: {:.80}", st_.events, data));
    const json& d = c["delta"];
    auto text = [&](const char* key) {
      const auto it = d.find(key);
      return it != d.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    const std::string content = text("content");
    const bool has_text = !content.empty() || !text("reasoning_content").empty() ||
                          (d.contains("tool_calls") && !d["tool_calls"].empty());
    if (c.value("index", 0) == 0) st_.content += content;
    if (st_.first_token_s < 0 || has_text) {
      if (st_.first_token_s < 0) st_.first_token_s = t;
      st_.token_chunks_s.push_back(t);
    }
    if (const auto f = c.find("finish_reason"); f != c.end() && f->is_string()) st_.finished = true;
  }
}

void SseStream::finish(bool expect_usage) {
  if (!pending_.empty() || has_data_) fail("the stream ended inside an event");
  if (!st_.done) fail("the stream ended without data: [DONE]");
  if (!st_.finished) fail("no chunk had a finish_reason");
  if (expect_usage && st_.completion_tokens < 0)
    fail("no usage chunk (stream_options.include_usage)");
}

}  // namespace ug::load
