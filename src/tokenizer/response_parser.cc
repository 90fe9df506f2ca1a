#include "tokenizer/response_parser.h"

#include <algorithm>
#include <optional>

#include "core/error.h"
#include "tokenizer/tool_format.h"

namespace ug {
namespace {

constexpr std::string_view kChannelOpen = "<|channel>";
constexpr std::string_view kChannelClose = "<channel|>";
constexpr std::string_view kCallOpen = "<|tool_call>";
constexpr std::string_view kCallClose = "<tool_call|>";

bool is_ascii_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

void skip_spaces(std::string_view t, size_t& pos) {
  while (pos < t.size() && is_ascii_space(t[pos])) ++pos;
}

// Drops the stop markers generation may leave at the end (and whitespace around them).
std::string_view strip_trailing_markers(std::string_view t) {
  static constexpr std::string_view kMarkers[] = {"<turn|>", "<|tool_response>", "<eos>"};
  for (bool changed = true; changed;) {
    changed = false;
    while (!t.empty() && is_ascii_space(t.back())) t.remove_suffix(1);
    for (std::string_view m : kMarkers)
      if (t.size() >= m.size() && t.substr(t.size() - m.size()) == m) {
        t.remove_suffix(m.size());
        changed = true;
      }
  }
  return t;
}

// Parses `<|tool_call>call:NAME{…}<tool_call|>` at t[start]; on success sets `end` past it.
std::optional<ToolCall> parse_call(std::string_view t, size_t start, size_t& end) {
  size_t pos = start + kCallOpen.size();
  skip_spaces(t, pos);
  if (t.substr(pos, 5) != "call:") return std::nullopt;
  pos += 5;
  const size_t brace = t.find('{', pos);
  if (brace == std::string_view::npos ||
      t.substr(pos, brace - pos).find('<') != std::string_view::npos)
    return std::nullopt;
  ToolCall call;
  call.name = std::string(py_strip(t.substr(pos, brace - pos)));
  if (call.name.empty()) return std::nullopt;
  pos = brace;
  try {
    call.arguments = parse_tool_value(t, pos);
  } catch (const Error&) {
    return std::nullopt;
  }
  skip_spaces(t, pos);
  if (t.substr(pos, kCallClose.size()) == kCallClose)
    pos += kCallClose.size();
  else if (pos != t.size())  // tolerate only a call cut off right after its arguments
    return std::nullopt;
  end = pos;
  return call;
}

}  // namespace

ParsedResponse parse_response(std::string_view text) {
  const std::string_view t = strip_trailing_markers(text);
  ParsedResponse r;
  std::string content;
  size_t pos = 0;
  while (pos < t.size()) {
    const size_t channel = t.find(kChannelOpen, pos);
    const size_t call = t.find(kCallOpen, pos);
    const size_t next = std::min(channel, call);
    content += t.substr(pos, next == std::string_view::npos ? next : next - pos);
    if (next == std::string_view::npos) break;
    if (next == channel) {
      const size_t body = channel + kChannelOpen.size();
      const size_t close = t.find(kChannelClose, body);
      std::string_view thought =
          t.substr(body, close == std::string_view::npos ? close : close - body);
      if (thought.substr(0, 8) == "thought\n" || thought == "thought")
        thought.remove_prefix(std::min<size_t>(8, thought.size()));
      const std::string_view trimmed = py_strip(thought);
      if (!trimmed.empty()) {
        if (!r.reasoning.empty()) r.reasoning += '\n';  // several thought spans: one per line
        r.reasoning += trimmed;
      }
      pos = close == std::string_view::npos ? t.size() : close + kChannelClose.size();
      continue;
    }
    size_t end = 0;
    if (auto parsed = parse_call(t, call, end)) {
      r.tool_calls.push_back(std::move(*parsed));
      pos = end;
    } else {  // keep a malformed call visible instead of dropping it
      const size_t close = t.find(kCallClose, call);
      pos = close == std::string_view::npos ? t.size() : close + kCallClose.size();
      content += t.substr(call, pos - call);
    }
  }
  r.content = std::string(py_strip(content));
  return r;
}

}  // namespace ug
