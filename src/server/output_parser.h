// Incremental split of generated text (decoded with special tokens) into reasoning, visible content
// and tool calls, for streaming: text goes in as it is generated, and only what is final comes out.
// The concatenated output equals tokenizer/response_parser.h's parse_response() on the whole text
// (reasoning spans trimmed and joined by "\n", content trimmed, trailing
// <turn|>/<|tool_response>/<eos> dropped, a malformed tool call kept verbatim in content), so
// streaming and non-streaming replies agree. Markers split across pushes are held back until they
// are complete. Thought text never reaches content.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/response_parser.h"

namespace ug::server {

class OutputParser {
 public:
  struct Delta {
    std::string reasoning;
    std::string content;
    std::vector<ToolCall> tool_calls;
    bool empty() const { return reasoning.empty() && content.empty() && tool_calls.empty(); }
  };

  // parse_tool_calls = false: tool-call markup is left in content (no tools were declared).
  explicit OutputParser(bool parse_tool_calls) : tools_(parse_tool_calls) {}

  Delta push(std::string_view text);
  Delta finish();  // end of generation: flushes what was held back

  bool in_reasoning() const { return mode_ == Mode::Thought; }

 private:
  enum class Mode { Content, Thought, ToolCall };
  void step(Delta& out, bool final);
  bool step_content(Delta& out, bool final);
  bool step_thought(Delta& out, bool final);
  bool step_tool_call(Delta& out, bool final);
  void emit_content(Delta& out, std::string_view s);
  void emit_reasoning(Delta& out, std::string_view s);
  size_t held_suffix(std::string_view text, std::string_view close) const;

  bool tools_;
  Mode mode_ = Mode::Content;
  std::string pending_;           // text not yet classified
  bool content_started_ = false;  // leading whitespace of content is dropped
  std::string content_ws_;        // trailing whitespace of content, emitted only if more follows
  bool thought_prefix_done_ = false;
  bool span_started_ = false;   // current thought span has emitted text
  bool reasoning_any_ = false;  // some span emitted text (next span starts with "\n")
  std::string reasoning_ws_;
};

}  // namespace ug::server
