#include "server/output_parser.h"

#include <algorithm>
#include <initializer_list>

#include "tokenizer/tool_format.h"

namespace ug::server {
namespace {

constexpr std::string_view kChannelOpen = "<|channel>";
constexpr std::string_view kChannelClose = "<channel|>";
constexpr std::string_view kCallOpen = "<|tool_call>";
constexpr std::string_view kCallClose = "<tool_call|>";
constexpr std::string_view kTailMarkers[] = {"<turn|>", "<|tool_response>", "<eos>"};
constexpr std::string_view kThoughtPrefix = "thought\n";

bool is_ascii_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

bool ends_with(std::string_view t, std::string_view s) {
  return t.size() >= s.size() && t.substr(t.size() - s.size()) == s;
}

// parse_response's strip_trailing_markers: the end of generation drops stop markers and spaces.
std::string_view strip_trailing(std::string_view t) {
  for (bool changed = true; changed;) {
    changed = false;
    while (!t.empty() && is_ascii_space(t.back())) t.remove_suffix(1);
    for (std::string_view m : kTailMarkers)
      if (ends_with(t, m)) {
        t.remove_suffix(m.size());
        changed = true;
      }
  }
  return t;
}

}  // namespace

// Length of the suffix of `text` that might still turn out to be a marker or the trailing
// markers/spaces that the end of generation drops: spaces and complete tail markers, then a partial
// marker.
size_t OutputParser::held_suffix(std::string_view text, std::string_view close) const {
  size_t partial = 0;
  auto consider = [&](std::string_view m) {
    if (m.empty()) return;
    for (size_t len = std::min(m.size() - 1, text.size()); len > partial; --len)
      if (text.substr(text.size() - len) == m.substr(0, len)) {
        partial = len;
        break;
      }
  };
  consider(close);
  for (std::string_view m : kTailMarkers) consider(m);
  if (mode_ == Mode::Content) {
    consider(kChannelOpen);
    if (tools_) consider(kCallOpen);
  }
  size_t pos = text.size() - partial;
  for (bool changed = true; changed && pos > 0;) {
    changed = false;
    while (pos > 0 && is_ascii_space(text[pos - 1])) --pos, changed = true;
    for (std::string_view m : kTailMarkers)
      if (ends_with(text.substr(0, pos), m)) pos -= m.size(), changed = true;
  }
  return text.size() - pos;
}

void OutputParser::emit_content(Delta& out, std::string_view s) {
  std::string_view core = py_strip(s);
  if (!content_started_) {
    if (core.empty()) return;
    s.remove_prefix(size_t(core.data() - s.data()));
    content_started_ = true;
  }
  if (core.empty()) {
    content_ws_ += s;
    return;
  }
  size_t body_end = size_t(core.data() + core.size() - s.data());
  out.content += content_ws_;
  out.content += s.substr(0, body_end);
  content_ws_ = std::string(s.substr(body_end));
}

void OutputParser::emit_reasoning(Delta& out, std::string_view s) {
  std::string_view core = py_strip(s);
  if (!span_started_) {
    if (core.empty()) return;
    s.remove_prefix(size_t(core.data() - s.data()));
    if (reasoning_any_) out.reasoning += '\n';  // several thought spans: one per line
    span_started_ = reasoning_any_ = true;
  }
  if (core.empty()) {
    reasoning_ws_ += s;
    return;
  }
  size_t body_end = size_t(core.data() + core.size() - s.data());
  out.reasoning += reasoning_ws_;
  out.reasoning += s.substr(0, body_end);
  reasoning_ws_ = std::string(s.substr(body_end));
}

bool OutputParser::step_content(Delta& out, bool final) {
  const size_t channel = pending_.find(kChannelOpen);
  const size_t call = tools_ ? pending_.find(kCallOpen) : std::string::npos;
  const size_t next = std::min(channel, call);
  if (next != std::string::npos) {
    emit_content(out, std::string_view(pending_).substr(0, next));
    if (next == channel) {
      pending_.erase(0, next + kChannelOpen.size());
      mode_ = Mode::Thought;
      thought_prefix_done_ = span_started_ = false;
      reasoning_ws_.clear();
    } else {
      pending_.erase(0, next);  // the call is parsed as a whole, opener included
      mode_ = Mode::ToolCall;
    }
    return true;
  }
  size_t keep = final ? pending_.size() : pending_.size() - held_suffix(pending_, "");
  std::string_view ready = std::string_view(pending_).substr(0, keep);
  emit_content(out, final ? strip_trailing(ready) : ready);
  pending_.erase(0, keep);
  return false;
}

bool OutputParser::step_thought(Delta& out, bool final) {
  size_t close = pending_.find(kChannelClose);
  if (!thought_prefix_done_) {
    std::string_view body = std::string_view(pending_).substr(0, close);
    const bool complete = close != std::string::npos || final;
    if (close ==
        std::string::npos)  // the end of the span is not known yet (or is the end of generation)
      body = final ? strip_trailing(body)
                   : body.substr(0, body.size() - held_suffix(body, kChannelClose));
    if (body.substr(0, kThoughtPrefix.size()) == kThoughtPrefix) {
      pending_.erase(0, kThoughtPrefix.size());
    } else if (complete && body == "thought") {
      pending_.erase(0, body.size());
    } else if (!complete && body.size() < kThoughtPrefix.size() &&
               kThoughtPrefix.substr(0, body.size()) == body) {
      return false;  // might still be "thought\n"
    }
    thought_prefix_done_ = true;
    close = pending_.find(kChannelClose);
  }
  if (close != std::string::npos) {
    emit_reasoning(out, std::string_view(pending_).substr(0, close));
    pending_.erase(0, close + kChannelClose.size());
    mode_ = Mode::Content;
    span_started_ = false;
    reasoning_ws_.clear();
    return true;
  }
  size_t keep = final ? pending_.size() : pending_.size() - held_suffix(pending_, kChannelClose);
  std::string_view ready = std::string_view(pending_).substr(0, keep);
  emit_reasoning(out, final ? strip_trailing(ready) : ready);
  pending_.erase(0, keep);
  return false;
}

bool OutputParser::step_tool_call(Delta& out, bool final) {
  const size_t close = pending_.find(kCallClose, kCallOpen.size());
  if (close == std::string::npos && !final) return false;
  std::string_view segment = close == std::string::npos
                                 ? strip_trailing(pending_)
                                 : std::string_view(pending_).substr(0, close + kCallClose.size());
  ParsedResponse parsed = parse_response(segment);
  if (!parsed.tool_calls.empty()) {
    for (auto& c : parsed.tool_calls) out.tool_calls.push_back(std::move(c));
  } else {
    emit_content(out, segment);  // a malformed call stays visible, verbatim
  }
  pending_.erase(0, close == std::string::npos ? pending_.size() : close + kCallClose.size());
  mode_ = Mode::Content;
  return !final || !pending_.empty();
}

void OutputParser::step(Delta& out, bool final) {
  for (bool progress = true; progress;) {
    switch (mode_) {
      case Mode::Content:
        progress = step_content(out, final);
        break;
      case Mode::Thought:
        progress = step_thought(out, final);
        break;
      case Mode::ToolCall:
        progress = step_tool_call(out, final);
        break;
    }
  }
}

OutputParser::Delta OutputParser::push(std::string_view text) {
  Delta out;
  pending_ += text;
  step(out, false);
  return out;
}

OutputParser::Delta OutputParser::finish() {
  Delta out;
  step(out, true);
  return out;
}

}  // namespace ug::server
