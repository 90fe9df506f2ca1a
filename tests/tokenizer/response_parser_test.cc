// Parsing Gemma 4 model output (special tokens kept) into reasoning, tool calls and content.
#include "tokenizer/response_parser.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "tokenizer/tool_format.h"

namespace ug {
namespace {

using nlohmann::json;

TEST(ResponseParser, PlainAnswerWithStopMarker) {
  ParsedResponse r = parse_response("Red, yellow and blue.<turn|>");
  EXPECT_EQ(r.content, "Red, yellow and blue.");
  EXPECT_EQ(r.reasoning, "");
  EXPECT_TRUE(r.tool_calls.empty());
  EXPECT_EQ(parse_response("  Hi there \n<turn|>\n<eos>").content, "Hi there");
}

TEST(ResponseParser, ThinkingChannelBecomesReasoning) {
  ParsedResponse r =
      parse_response("<|channel>thought\nThe user wants 2+2.\n<channel|>The answer is 4.<turn|>");
  EXPECT_EQ(r.reasoning, "The user wants 2+2.");
  EXPECT_EQ(r.content, "The answer is 4.");
  // The empty pre-closed channel of the thinking-off prompt leaves no reasoning.
  r = parse_response("<|channel>thought\n<channel|>Hi");
  EXPECT_EQ(r.reasoning, "");
  EXPECT_EQ(r.content, "Hi");
  // A channel without the "thought" label is still reasoning (HF regex makes it optional).
  EXPECT_EQ(parse_response("<|channel>plan<channel|>ok").reasoning, "plan");
}

TEST(ResponseParser, UnclosedThoughtRunsToTheEnd) {
  ParsedResponse r = parse_response("<|channel>thought\nStill thinking about");
  EXPECT_EQ(r.reasoning, "Still thinking about");
  EXPECT_EQ(r.content, "");
}

TEST(ResponseParser, ToolCallShapedLikeSection2_6) {
  ParsedResponse r = parse_response(
      "<|channel>thought\nNeed the weather tool.\n<channel|>"
      "<|tool_call>call:get_weather{city:<|\"|>Paris<|\"|>,unit:<|\"|>celsius<|\"|>}<tool_call|>"
      "<|tool_response>");
  EXPECT_EQ(r.reasoning, "Need the weather tool.");
  EXPECT_EQ(r.content, "");
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].name, "get_weather");
  EXPECT_EQ(r.tool_calls[0].arguments, json({{"city", "Paris"}, {"unit", "celsius"}}));
}

TEST(ResponseParser, StringsWithDelimitersAndAllValueKinds) {
  ParsedResponse r = parse_response(
      "Sure.<|tool_call>call:note{text:<|\"|>a {b}, c: \"d\" 'e' [f]<|\"|>,n:-2.5e3,i:42,"
      "ok:true,no:false,none:None,nil:null,"
      "list:[1,<|\"|>x,y<|\"|>,[false],{}],obj:{inner:<|\"|>}<|\"|>,deep:{k:<|\"|>:<|\"|>}},"
      "word:celsius}<tool_call|>"
      "<|tool_call>call:second{}<tool_call|>");
  EXPECT_EQ(r.content, "Sure.");
  ASSERT_EQ(r.tool_calls.size(), 2u);
  const json want = json::parse(R"({
    "text": "a {b}, c: \"d\" 'e' [f]", "n": -2500.0, "i": 42, "ok": true, "no": false,
    "none": null, "nil": null, "list": [1, "x,y", [false], {}],
    "obj": {"inner": "}", "deep": {"k": ":"}}, "word": "celsius"})");
  EXPECT_EQ(r.tool_calls[0].name, "note");
  EXPECT_EQ(r.tool_calls[0].arguments, want);
  EXPECT_TRUE(r.tool_calls[0].arguments["n"].is_number_float());
  EXPECT_TRUE(r.tool_calls[0].arguments["i"].is_number_integer());
  EXPECT_EQ(r.tool_calls[1].name, "second");
  EXPECT_EQ(r.tool_calls[1].arguments, json::object());
}

TEST(ResponseParser, QuotedKeysAndJsonStringsAccepted) {
  ParsedResponse r = parse_response(
      "<|tool_call>call:f{<|\"|>my key<|\"|>:1,\"json\":\"q\\\"uote\\n\"}<tool_call|>");
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].arguments, json({{"my key", 1}, {"json", "q\"uote\n"}}));
}

TEST(ResponseParser, RoundTripsWhatTheTemplateRenders) {
  const json args = json::parse(R"({"city": "Paris, \"FR\": {x}", "days": 3, "ratio": 1e-05,
    "flags": [true, false, null], "nested": {"Zed": [1.5, "a"], "alpha": {}}})");
  json call = {{"function", {{"name", "forecast"}, {"arguments", args}}}};
  const std::string rendered = format_tool_call(call, "call");
  ParsedResponse r = parse_response(rendered + "<|tool_response>");
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].name, "forecast");
  EXPECT_EQ(r.tool_calls[0].arguments, args);
}

TEST(ResponseParser, TextAroundCallsIsContent) {
  ParsedResponse r = parse_response(
      "Let me check. <|tool_call>call:a{x:1}<tool_call|> and <|tool_call>call:b{y:2}<tool_call|>");
  EXPECT_EQ(r.content, "Let me check.  and");
  ASSERT_EQ(r.tool_calls.size(), 2u);
  EXPECT_EQ(r.tool_calls[1].arguments, json({{"y", 2}}));
}

TEST(ResponseParser, MalformedCallStaysVisibleInContent) {
  const std::string bad = "<|tool_call>call:f{x:<|\"|>never closed}<tool_call|>";
  ParsedResponse r = parse_response("Before " + bad + " after");
  EXPECT_TRUE(r.tool_calls.empty());
  EXPECT_EQ(r.content, "Before " + bad + " after");
  r = parse_response("<|tool_call>no_call_prefix{}<tool_call|>");
  EXPECT_TRUE(r.tool_calls.empty());
  EXPECT_EQ(r.content, "<|tool_call>no_call_prefix{}<tool_call|>");
}

TEST(ResponseParser, CallCutOffAfterArgumentsIsAccepted) {
  ParsedResponse r = parse_response("<|tool_call>call:f{a:1}");
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].arguments, json({{"a", 1}}));
}

TEST(ResponseParser, NeverThrowsOnScrambledMarkup) {
  // Model output is untrusted: any mix of markers and DSL fragments must parse without throwing.
  const char* const kFragments[] = {
      "<|tool_call>", "call:",      "f",         "{", "}",  "[",  "]",
      "<|\"|>",       ",",          ":",         "1", "-",  "e5", "<tool_call|>",
      "<|channel>",   "<channel|>", "thought\n", " ", "\"", "\\", "None",
      "<turn|>"};
  std::uint32_t state = 12345;
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    for (int i = 0; i < 24; ++i) {
      state = state * 1664525u + 1013904223u;
      text += kFragments[(state >> 8) % std::size(kFragments)];
    }
    EXPECT_NO_THROW(parse_response(text)) << text;
  }
}

TEST(ToolDsl, ParseErrorsAreLocated) {
  size_t pos = 0;
  try {
    parse_tool_value("{a:<|\"|>open", pos);
    FAIL() << "expected ug::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unterminated"), std::string::npos) << e.what();
  }
  pos = 0;
  EXPECT_THROW(parse_tool_value("{a 1}", pos), Error);
  pos = 0;
  EXPECT_THROW(parse_tool_value("[1,2", pos), Error);
  pos = 0;
  EXPECT_THROW(parse_tool_value(std::string(10000, '['), pos), Error);  // depth limit, no crash
}

}  // namespace
}  // namespace ug
