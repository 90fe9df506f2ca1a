// The streaming output parser gives exactly what parse_response gives on the whole text, however
// the text is chunked, and never lets thought text into content.
#include "server/output_parser.h"

#include <gtest/gtest.h>

#include <random>

namespace ug::server {
namespace {

struct Collected {
  std::string reasoning, content;
  std::vector<ToolCall> calls;
};

Collected run(const std::vector<std::string>& chunks, bool tools = true,
              const std::string& prefix = "") {
  OutputParser p(tools);
  Collected c;
  auto add = [&](OutputParser::Delta d) {
    c.reasoning += d.reasoning;
    c.content += d.content;
    for (auto& t : d.tool_calls) c.calls.push_back(t);
  };
  if (!prefix.empty()) add(p.push(prefix));
  for (const auto& s : chunks) add(p.push(s));
  add(p.finish());
  return c;
}

void expect_same_as_whole(const std::string& text, const std::vector<std::string>& chunks) {
  ParsedResponse want = parse_response(text);
  Collected got = run(chunks);
  EXPECT_EQ(got.reasoning, want.reasoning) << text;
  EXPECT_EQ(got.content, want.content) << text;
  ASSERT_EQ(got.calls.size(), want.tool_calls.size()) << text;
  for (size_t i = 0; i < got.calls.size(); ++i) {
    EXPECT_EQ(got.calls[i].name, want.tool_calls[i].name);
    EXPECT_EQ(got.calls[i].arguments, want.tool_calls[i].arguments);
  }
}

std::vector<std::string> split_random(const std::string& s, std::mt19937& rng) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t n = std::min<size_t>(s.size() - pos, 1 + rng() % 6);
    while (pos + n < s.size() && (uint8_t(s[pos + n]) & 0xC0) == 0x80) ++n;
    out.push_back(s.substr(pos, n));
    pos += n;
  }
  return out;
}

TEST(OutputParser, ThinkingThenAnswer) {
  auto c = run({"<|channel>", "thought", "\n", "Let me ", "think.", "<channel|>", "The answer",
                " is 4.", "<turn|>"});
  EXPECT_EQ(c.reasoning, "Let me think.");
  EXPECT_EQ(c.content, "The answer is 4.");
  EXPECT_TRUE(c.calls.empty());
}

TEST(OutputParser, ToolCallAfterThought) {
  auto c = run({"<|channel>thought\nNeed weather.<channel|>", "<|tool_call>",
                "call:get_weather{city:", "<|\"|>Paris<|\"|>}", "<tool_call|>"});
  EXPECT_EQ(c.reasoning, "Need weather.");
  EXPECT_EQ(c.content, "");
  ASSERT_EQ(c.calls.size(), 1u);
  EXPECT_EQ(c.calls[0].name, "get_weather");
  EXPECT_EQ(c.calls[0].arguments, nlohmann::json({{"city", "Paris"}}));
}

TEST(OutputParser, ForcedPrefixAndNoToolsMode) {
  auto c = run({"x:1}<tool_call|>"}, true, "<|tool_call>call:f{");
  ASSERT_EQ(c.calls.size(), 1u);
  EXPECT_EQ(c.calls[0].arguments, nlohmann::json({{"x", 1}}));
  auto raw = run({"<|tool_call>call:f{x:1}<tool_call|>"}, false);
  EXPECT_TRUE(raw.calls.empty());
  EXPECT_EQ(raw.content, "<|tool_call>call:f{x:1}<tool_call|>");
}

TEST(OutputParser, HoldsPartialMarkersAndTrailingSpace) {
  OutputParser p(true);
  EXPECT_EQ(p.push("Hello <|chan").content, "Hello");
  auto d = p.push("nel>thought\nhmm");
  EXPECT_EQ(d.content, "");
  EXPECT_EQ(d.reasoning, "hmm");
  EXPECT_TRUE(p.in_reasoning());
  d = p.push("<channel|> world <tu");
  EXPECT_EQ(d.content, "  world");  // "Hello " + " world": inner spaces are kept
  d = p.push("rn|>");
  EXPECT_EQ(d.content, "");
  EXPECT_EQ(p.finish().content, "");
}

TEST(OutputParser, MatchesParseResponseOnRandomChunkings) {
  const std::vector<std::string> texts = {
      "plain answer",
      "  spaced   answer \n",
      "<|channel>thought\nA<channel|>B<|channel>thought\n C <channel|> D<turn|>",
      "<|channel>thoughtful<channel|>x",
      "<|channel>thought<channel|>answer",
      "<|channel>thought\nunclosed thinking <turn|>",
      "a<turn|>b<eos>",
      "pre <|tool_call>call:f{a:1,b:<|\"|>s t<|\"|>}<tool_call|> mid "
      "<|tool_call>call:g{}<tool_call|><|tool_response>",
      "<|tool_call>call:broken{a:<tool_call|>tail",
      "<|tool_call>call:cut{a:[1,2]}",
      "<|tool_call>call:cut{a:",
      "x <channel|> y <|channel",
      "\xe3\x80\x80 unicode space \xe3\x80\x80",
      "<|channel>thought\n<|tool_call>inside thought<channel|>out",
  };
  std::mt19937 rng(1);
  for (const auto& t : texts) {
    expect_same_as_whole(t, {t});
    std::vector<std::string>
        bytes;  // one UTF-8 character per push (deltas are always UTF-8 complete)
    for (char ch : t)
      if ((uint8_t(ch) & 0xC0) == 0x80)
        bytes.back() += ch;
      else
        bytes.push_back(std::string(1, ch));
    expect_same_as_whole(t, bytes);
    for (int k = 0; k < 30; ++k) expect_same_as_whole(t, split_random(t, rng));
  }
}

}  // namespace
}  // namespace ug::server
