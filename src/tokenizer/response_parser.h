// Splits Gemma 4 model output (decoded WITHOUT skipping special tokens) into reasoning, tool
// calls and the visible answer (docs tokenizer_chat.md §2.4, §2.5).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace ug {

struct ToolCall {
  std::string name;
  nlohmann::json arguments;  // always an object
};

struct ParsedResponse {
  std::string reasoning;  // text of the `<|channel>thought\n…<channel|>` spans, trimmed
  std::string content;    // everything else, trimmed
  std::vector<ToolCall> tool_calls;
};

// Extracts every `<|channel>[thought\n]…<channel|>` span as reasoning (an unclosed span runs to
// the end: generation stopped mid-thought), every `<|tool_call>call:NAME{…}<tool_call|>` as a
// ToolCall with its DSL arguments parsed to JSON, and drops trailing `<turn|>`,
// `<|tool_response>` and `<eos>` markers. A tool call whose DSL does not parse is kept verbatim
// in `content` rather than lost.
ParsedResponse parse_response(std::string_view text);

}  // namespace ug
