// Native Gemma 4 chat template: literal renderings of docs/tokenizer_chat.md §1.4 and §2.6, and
// every rule of §2.2-2.5 (system block, continuation, tools, results, generation prompt).
#include "tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "core/mapped_file.h"
#include "test_util.h"
#include "tokenizer/tool_format.h"

namespace ug {
namespace {

using nlohmann::json;

json load_json(const std::string& rel) { return json::parse(read_text_file(test::data_path(rel))); }
std::string load_text(const std::string& rel) { return read_text_file(test::data_path(rel)); }

std::string render(const json& messages, bool gen = true, bool think = false,
                   json tools = json::array()) {
  ChatTemplateOptions o;
  o.add_generation_prompt = gen;
  o.enable_thinking = think;
  o.tools = std::move(tools);
  return render_chat(messages, o);
}

json user(const std::string& text) { return {{"role", "user"}, {"content", text}}; }
json assistant(const std::string& text) { return {{"role", "assistant"}, {"content", text}}; }

constexpr const char* kEmptyChannel = "<|channel>thought\n<channel|>";

// The error message of render_chat on `messages`, or "" if it did not throw ug::Error.
std::string render_error(const json& messages, json tools = json::array()) {
  try {
    render(messages, true, false, std::move(tools));
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ChatTemplate, GoldenPromptsOfSection1_4) {
  const json goldens = load_json("chat/goldens.json")["goldens"];
  ASSERT_EQ(goldens.size(), 8u);
  for (const json& g : goldens) {
    SCOPED_TRACE(g["name"].get<std::string>());
    const std::string got = render(g["messages"], g.value("add_generation_prompt", true),
                                   g.value("enable_thinking", false));
    std::string want = g["text"];
    // The E-series template lacks the empty channel the 12B template (ours) appends.
    if (g.value("e_series", false)) want += kEmptyChannel;
    EXPECT_EQ(got, want);
  }
}

TEST(ChatTemplate, Section2_6FullConversation) {
  const json conv = load_json("chat/weather_conversation.json");
  EXPECT_EQ(render(conv["messages"], true, false, conv["tools"]),
            load_text("chat/weather_full.expected.txt"));
}

TEST(ChatTemplate, Section2_6CutAfterToolWithThinkingReplaysReasoning) {
  const json conv = load_json("chat/weather_conversation.json");
  json cut(conv["messages"].begin(), conv["messages"].begin() + 4);
  const std::string want = load_text("chat/weather_after_tool_think.expected.txt");
  // After a tool response the turn stays open: no generation prompt either way.
  EXPECT_EQ(render(cut, true, true, conv["tools"]), want);
  EXPECT_EQ(render(cut, false, true, conv["tools"]), want);
}

TEST(ChatTemplate, Section2_6CutAfterCallLeavesToolResponseOpen) {
  const json conv = load_json("chat/weather_conversation.json");
  json cut(conv["messages"].begin(), conv["messages"].begin() + 3);
  EXPECT_EQ(render(cut, true, false, conv["tools"]),
            load_text("chat/weather_after_call.expected.txt"));
}

TEST(ChatTemplate, LegacyMappingToolResponses) {
  json call = {{"function", {{"name", "get_weather"}, {"arguments", {{"city", "Paris"}}}}}};
  json m = {
      {"role", "assistant"},
      {"tool_calls", json::array({call})},
      {"tool_responses",
       json::array({{{"name", "get_weather"}, {"response", {{"temp", 18}, {"sky", "cloudy"}}}}})}};
  EXPECT_EQ(render(json::array({user("Weather?"), m})),
            "<bos><|turn>user\nWeather?<turn|>\n<|turn>model\n"
            "<|tool_call>call:get_weather{city:<|\"|>Paris<|\"|>}<tool_call|>"
            "<|tool_response>response:get_weather{sky:<|\"|>cloudy<|\"|>,temp:18}<tool_response|>");
  // A legacy response without a name is "unknown".
  json anon = {{"role", "assistant"}, {"tool_responses", json::array({{{"response", "ok"}}})}};
  EXPECT_EQ(render(json::array({user("x"), anon}), false),
            "<bos><|turn>user\nx<turn|>\n<|turn>model\n"
            "<|tool_response>response:unknown{value:<|\"|>ok<|\"|>}<tool_response|>");
}

TEST(ChatTemplate, DeveloperFirstMessageBecomesSystemTurn) {
  EXPECT_EQ(render(json::array({{{"role", "developer"}, {"content", " dev rules\n"}}, user("Hi")}),
                   false),
            "<bos><|turn>system\ndev rules<turn|>\n<|turn>user\nHi<turn|>\n");
}

TEST(ChatTemplate, LaterSystemMessageIsAnOrdinaryTurn) {
  EXPECT_EQ(render(json::array({user("a"), {{"role", "system"}, {"content", "b"}}}), false),
            "<bos><|turn>user\na<turn|>\n<|turn>system\nb<turn|>\n");
}

TEST(ChatTemplate, TwoUserTurnsEachGetAHeader) {
  EXPECT_EQ(render(json::array({user("one"), user("two")})),
            std::string("<bos><|turn>user\none<turn|>\n<|turn>user\ntwo<turn|>\n<|turn>model\n") +
                kEmptyChannel);
}

TEST(ChatTemplate, ConsecutiveAssistantsShareHeaderButBothClose) {
  EXPECT_EQ(render(json::array({user("q"), assistant("part1"), assistant("part2")}), false),
            "<bos><|turn>user\nq<turn|>\n<|turn>model\npart1<turn|>\npart2<turn|>\n");
}

TEST(ChatTemplate, ThinkingOnlySystemBlockAndNoEmptyChannel) {
  EXPECT_EQ(render(json::array({user("Hi")}), true, true),
            "<bos><|turn>system\n<|think|>\n<turn|>\n<|turn>user\nHi<turn|>\n<|turn>model\n");
}

TEST(ChatTemplate, NoGenerationPromptWhenNotRequested) {
  EXPECT_EQ(render(json::array({user("Hi")}), false), "<bos><|turn>user\nHi<turn|>\n");
}

TEST(ChatTemplate, ToolsWithoutSystemMessage) {
  json tools = json::array(
      {{{"type", "function"}, {"function", {{"name", "now"}, {"description", "Current time."}}}}});
  EXPECT_EQ(render(json::array({user("Time?")}), false, false, tools),
            "<bos><|turn>system\n<|tool>declaration:now{description:<|\"|>Current time.<|\"|>}"
            "<tool|><turn|>\n<|turn>user\nTime?<turn|>\n");
}

TEST(ChatTemplate, ListFormSystemPartsTrimmedPlusSpace) {
  json sys = {{"role", "system"},
              {"content", json::array({{{"type", "text"}, {"text", " Be brief. "}},
                                       {{"type", "text"}, {"text", "Use English.\n"}}})}};
  EXPECT_EQ(render(json::array({sys, user("Hi")}), false),
            "<bos><|turn>system\nBe brief. Use English. <turn|>\n<|turn>user\nHi<turn|>\n");
}

TEST(ChatTemplate, ContentPartsConcatenateWithoutSeparators) {
  json parts = json::array({{{"type", "text"}, {"text", "Compare "}},
                            {{"type", "image"}},
                            {{"type", "text"}, {"text", " with "}},
                            {{"type", "image_url"}, {"image_url", {{"url", "x.png"}}}},
                            {{"type", "input_image"}},
                            {{"type", "audio"}},
                            {{"type", "input_audio"}},
                            {{"type", "video"}}});
  EXPECT_EQ(render(json::array({{{"role", "user"}, {"content", parts}}}), false),
            "<bos><|turn>user\nCompare<|image|>with<|image|><|image|><|audio|><|audio|><|video|>"
            "<turn|>\n");
}

// Only the placeholders of media parts are media slots; the same text in a reply, a tool call's argument or
// reasoning is literal (a re-sent reply in which the model generated the token).
TEST(ChatTemplate, MediaSlotsAreTheMediaPartsOnly) {
  json image_part = json::array({{{"type", "text"}, {"text", "Look <|audio|>"}}, {{"type", "image"}}});
  json call = {{"id", "c"}, {"function", {{"name", "f"}, {"arguments", {{"a", "<|video|>"}}}}}};
  json messages = json::array(
      {{{"role", "user"}, {"content", image_part}},
       assistant("I see <|image|> and <|audio|>"),
       user("Next"),
       {{"role", "assistant"}, {"content", nullptr}, {"reasoning_content", "<|image|>"}, {"tool_calls", {call}}},
       {{"role", "tool"}, {"tool_call_id", "c"}, {"content", json::array({{{"type", "audio"}}})}}});
  RenderedChat r = render_chat_with_media(messages, {});
  EXPECT_EQ(r.text, render(messages));
  ASSERT_EQ(r.media_at.size(), 2u);
  EXPECT_EQ(r.text.compare(r.media_at[0], 9, "<|image|>"), 0);
  EXPECT_EQ(r.text.compare(r.media_at[1], 9, "<|audio|>"), 0);
  EXPECT_EQ(r.text.substr(0, r.media_at[0]), "<bos><|turn>user\nLook <|audio|>");  // the user's text: literal
  EXPECT_TRUE(r.text.substr(0, r.media_at[1]).ends_with("<tool_response|>"));      // the tool result's audio
  size_t placeholders = 0;
  for (const char* ph : {"<|image|>", "<|audio|>", "<|video|>"})
    for (size_t at = r.text.find(ph); at != std::string::npos; at = r.text.find(ph, at + 1)) ++placeholders;
  EXPECT_EQ(placeholders, 7u);  // the user's text, the reply (2), the reasoning, the argument, the media (2)
}

TEST(ChatTemplate, TrimIsPythonStripWithUnicodeWhitespace) {
  // U+3000, U+00A0, U+2028 and U+0085 are whitespace to Python; U+200B is not.
  EXPECT_EQ(render(json::array({user("\xE3\x80\x80 \xC2\xA0Hi\xE2\x80\xA8\xC2\x85\n")}), false),
            "<bos><|turn>user\nHi<turn|>\n");
  EXPECT_EQ(render(json::array({user("\xE2\x80\x8BHi")}), false),
            "<bos><|turn>user\n\xE2\x80\x8BHi<turn|>\n");
}

TEST(ChatTemplate, ModelContentHasThinkingStripped) {
  json a = assistant("<|channel>thought\nsecret<channel|> Answer <|channel>more<channel|>!");
  EXPECT_EQ(render(json::array({user("q"), a}), false),
            "<bos><|turn>user\nq<turn|>\n<|turn>model\nAnswer !<turn|>\n");
  // User content is only trimmed, never stripped.
  EXPECT_EQ(render(json::array({user("<|channel>x<channel|>y")}), false),
            "<bos><|turn>user\n<|channel>x<channel|>y<turn|>\n");
}

TEST(ChatTemplate, ReasoningNeverReplayedWithoutToolCallsOrBeforeLastUser) {
  json a = assistant("A");
  a["reasoning"] = "why";
  EXPECT_EQ(render(json::array({user("q"), a}), false),
            "<bos><|turn>user\nq<turn|>\n<|turn>model\nA<turn|>\n");
  // "reasoning" wins over "reasoning_content", and replay does not need enable_thinking.
  json call = {{"function", {{"name", "f"}, {"arguments", json::object()}}}};
  json b = {{"role", "assistant"},
            {"reasoning", "R1"},
            {"reasoning_content", "R2"},
            {"tool_calls", json::array({call})}};
  EXPECT_EQ(render(json::array({user("q"), b})),
            "<bos><|turn>user\nq<turn|>\n<|turn>model\n<|channel>thought\nR1\n<channel|>"
            "<|tool_call>call:f{}<tool_call|><|tool_response>");
}

TEST(ChatTemplate, ArgumentValuesFollowPythonStr) {
  json args = {{"i", 18},
               {"f", 2.5},
               {"small", 1e-05},
               {"n", nullptr},
               {"t", true},
               {"F", false},
               {"big", 1e16},
               {"whole", 100.0},
               {"neg", -0.5},
               {"tiny", 0.0001},
               {"list", json::array({1, "x", json::array({true})})},
               {"obj", {{"Zed", 1}, {"alpha", "s"}}}};
  json call = {{"id", "c"}, {"function", {{"name", "f"}, {"arguments", args}}}};
  json m = {{"role", "assistant"}, {"tool_calls", json::array({call})}};
  EXPECT_EQ(render(json::array({user("q"), m})),
            "<bos><|turn>user\nq<turn|>\n<|turn>model\n<|tool_call>call:f{big:1e+16,F:false,"
            "f:2.5,i:18,list:[1,<|\"|>x<|\"|>,[true]],n:None,neg:-0.5,"
            "obj:{alpha:<|\"|>s<|\"|>,Zed:1},small:1e-05,t:true,tiny:0.0001,whole:100.0}"
            "<tool_call|><|tool_response>");
}

TEST(ChatTemplate, StringArgumentsInsertedVerbatim) {
  json call = {{"function", {{"name", "f"}, {"arguments", "{\"a\": 1}"}}}};
  json m = {{"role", "assistant"}, {"tool_calls", json::array({call})}};
  EXPECT_EQ(render(json::array({user("q"), m})),
            "<bos><|turn>user\nq<turn|>\n<|turn>model\n<|tool_call>call:f{{\"a\": 1}}<tool_call|>"
            "<|tool_response>");
}

TEST(ChatTemplate, ToolMessageNameResolution) {
  json calls = json::array(
      {{{"id", "a"}, {"function", {{"name", "first"}, {"arguments", json::object()}}}},
       {{"id", "b"}, {"function", {{"name", "second"}, {"arguments", json::object()}}}}});
  json m = {{"role", "assistant"}, {"content", ""}, {"tool_calls", calls}};
  json by_id = {{"role", "tool"}, {"tool_call_id", "b"}, {"name", "ignored"}, {"content", "1"}};
  json by_name = {{"role", "tool"}, {"tool_call_id", "zzz"}, {"name", "named"}, {"content", "2"}};
  json unknown = {{"role", "tool"},
                  {"tool_call_id", "zzz"},
                  {"content", json::array({{{"type", "text"}, {"text", "3"}},
                                           {{"type", "image"}},
                                           {{"type", "text"}, {"text", " 4"}}})}};
  const std::string out = render(json::array({user("q"), m, by_id, by_name, unknown}));
  EXPECT_EQ(out,
            "<bos><|turn>user\nq<turn|>\n<|turn>model\n"
            "<|tool_call>call:first{}<tool_call|><|tool_call>call:second{}<tool_call|>"
            "<|tool_response>response:second{value:<|\"|>1<|\"|>}<tool_response|>"
            "<|tool_response>response:named{value:<|\"|>2<|\"|>}<tool_response|>"
            "<|tool_response>response:unknown{value:<|\"|>3 4<|\"|>}<tool_response|><|image|>");
}

TEST(ChatTemplate, ScalarToolContentAndFollowUpContentClosesTurn) {
  json call = {{"id", "c"}, {"function", {{"name", "f"}, {"arguments", {{"x", 1}}}}}};
  json m = {{"role", "assistant"}, {"content", "Done."}, {"tool_calls", json::array({call})}};
  json tool_null = {{"role", "tool"}, {"tool_call_id", "c"}, {"content", nullptr}};
  json tool_num = {{"role", "tool"}, {"tool_call_id", "c"}, {"content", 5}};
  // Content after the results closes the turn, so the generation prompt follows... except that
  // prev_message_type is still 'tool_response', which suppresses it (template quirk).
  EXPECT_EQ(render(json::array({user("q"), m, tool_null, tool_num})),
            "<bos><|turn>user\nq<turn|>\n<|turn>model\n<|tool_call>call:f{x:1}<tool_call|>"
            "<|tool_response>response:f{value:None}<tool_response|>"
            "<|tool_response>response:f{value:5}<tool_response|>Done.<turn|>\n");
}

TEST(ChatTemplate, UnclaimedToolMessageIsDropped) {
  json tool = {{"role", "tool"}, {"name", "f"}, {"content", "lost"}};
  EXPECT_EQ(render(json::array({user("q"), assistant("a"), tool}), false),
            "<bos><|turn>user\nq<turn|>\n<|turn>model\na<turn|>\n");
}

TEST(ChatTemplate, DeclarationLayout) {
  json tool = json::parse(R"({"type":"function","function":{
    "name":"search","description":"Search things.",
    "parameters":{"type":"object","required":["query"],"properties":{
      "query":{"type":"string","description":"Query text"},
      "Limit":{"type":"integer","nullable":true},
      "tags":{"type":"array","description":"Tags","items":{"type":"string","enum":["a","b"]}},
      "filter":{"type":"object","required":["from"],
                "properties":{"to":{"type":"string"},"from":{"type":"string"}}},
      "opts":{"type":"object","description":"Options","verbose":{"type":"boolean"}},
      "type":{"type":"string"}}},
    "response":{"type":"object","description":"Results."}}})");
  const std::string q = "<|\"|>";
  auto s = [&](const std::string& x) { return q + x + q; };
  EXPECT_EQ(format_function_declaration(tool, "tools[0]"),
            "declaration:search{description:" + s("Search things.") + ",parameters:{properties:{" +
                "filter:{properties:{from:{type:" + s("STRING") + "},to:{type:" + s("STRING") +
                "}},required:[" + s("from") + "],type:" + s("OBJECT") + "}," +
                "Limit:{nullable:true,type:" + s("INTEGER") + "}," +
                "opts:{description:" + s("Options") + ",properties:{verbose:{type:" + s("BOOLEAN") +
                "}},type:" + s("OBJECT") + "}," + "query:{description:" + s("Query text") +
                ",type:" + s("STRING") + "}," + "tags:{description:" + s("Tags") +
                ",items:{enum:[" + s("a") + "," + s("b") + "],type:" + s("STRING") +
                "},type:" + s("ARRAY") + "}," + "type:{type:" + s("STRING") + "}}," + "required:[" +
                s("query") + "],type:" + s("OBJECT") + "}," +
                "response:{description:" + s("Results.") + ",type:" + s("OBJECT") + "}}");
}

TEST(ChatTemplate, DeclarationWithoutParametersTypeStaysOpenLikeTheTemplate) {
  json tool = json::parse(
      R"({"type":"function","function":{"name":"ping",)"
      R"("parameters":{"properties":{"x":{"type":"string"}}}}})");
  EXPECT_EQ(format_function_declaration(tool, "t"),
            "declaration:ping{description:<|\"|><|\"|>,parameters:{properties:{x:{type:<|\"|>STRING"
            "<|\"|>}},}");
}

TEST(ChatTemplate, MalformedMessagesAreLocatedErrors) {
  EXPECT_NE(render_error(json::object()).find("messages: expected a JSON array"),
            std::string::npos);
  EXPECT_NE(render_error(json::array()).find("empty"), std::string::npos);
  EXPECT_NE(render_error(json::array({user("a"), {{"content", "x"}}})).find("messages[1].role"),
            std::string::npos);
  EXPECT_NE(
      render_error(json::array({{{"role", "user"}, {"content", 5}}})).find("messages[0].content"),
      std::string::npos);
  EXPECT_NE(render_error(json::array({{{"role", "user"}, {"content", {{"a", 1}}}}}))
                .find("messages[0].content"),
            std::string::npos);
  json call = {{"id", "c"}, {"function", {{"name", "f"}}}};
  json dict_tool = {{"role", "tool"}, {"tool_call_id", "c"}, {"content", {{"temp", 18}}}};
  EXPECT_NE(render_error(json::array({user("q"),
                                      {{"role", "assistant"}, {"tool_calls", json::array({call})}},
                                      dict_tool}))
                .find("messages[2].content"),
            std::string::npos);
  EXPECT_NE(render_error(
                json::array({{{"role", "user"}, {"content", json::array({{{"type", "file"}}})}}}))
                .find("messages[0].content[0].type"),
            std::string::npos);
  EXPECT_NE(render_error(json::array({{{"role", "assistant"}, {"tool_calls", "f()"}}}))
                .find("messages[0].tool_calls"),
            std::string::npos);
  EXPECT_NE(
      render_error(
          json::array({{{"role", "assistant"},
                        {"tool_calls", json::array({{{"function", {{"arguments", "{}"}}}}})}}}))
          .find("messages[0].tool_calls[0].function.name"),
      std::string::npos);
  EXPECT_NE(
      render_error(json::array({user("q")}), json::array({{{"name", "bare"}}})).find("tools[0]"),
      std::string::npos);
}

TEST(ChatTemplate, PythonFloatRepr) {
  EXPECT_EQ(py_float_repr(18.0), "18.0");
  EXPECT_EQ(py_float_repr(2.5), "2.5");
  EXPECT_EQ(py_float_repr(1e-05), "1e-05");
  EXPECT_EQ(py_float_repr(0.0001), "0.0001");
  EXPECT_EQ(py_float_repr(1e16), "1e+16");
  EXPECT_EQ(py_float_repr(1e15), "1000000000000000.0");
  EXPECT_EQ(py_float_repr(0.1), "0.1");
  EXPECT_EQ(py_float_repr(-1.5e300), "-1.5e+300");
  EXPECT_EQ(py_float_repr(123.456), "123.456");
  EXPECT_EQ(py_float_repr(-0.0), "-0.0");
  EXPECT_EQ(py_str(json::array({"a", 1, nullptr, true})), "['a', 1, None, True]");
}

TEST(ChatTemplate, CheckCheckpointTemplate) {
  // Minimal stand-ins carrying the markers that tell the families apart.
  const std::string mainline =
      "{%- macro format_parameters(properties, required, filter_keys=false) -%}{%- endmacro -%}"
      "{{- '<|turn>' + role + '\\n' }}{{- '<turn|>\\n' -}}{%- if tc.get('id') == "
      "follow.get('tool_call_id') -%}{%- endif -%}{{- '<|turn>model\\n' -}}"
      "{%- if not enable_thinking | default(false) -%}{{- '<|channel>thought\\n<channel|>' -}}"
      "{%- endif -%}";
  EXPECT_EQ(check_checkpoint_template(mainline), "");

  std::string e_series = mainline;
  e_series.replace(e_series.find("{{- '<|channel>thought\\n<channel|>' -}}"),
                   std::string("{{- '<|channel>thought\\n<channel|>' -}}").size(), "");
  EXPECT_NE(check_checkpoint_template(e_series).find("empty thought channel"), std::string::npos);

  const std::string longer = mainline +
                             "{%- if tool_response and enable_thinking -%}"
                             "{{- '<|channel>thought\\n' -}}{%- endif -%}";
  EXPECT_NE(check_checkpoint_template(longer).find("opens"), std::string::npos);

  EXPECT_NE(check_checkpoint_template("{{ '<start_of_turn>user\\n' }}").find("Gemma 2/3"),
            std::string::npos);
  EXPECT_NE(check_checkpoint_template("{{ messages }}").find("not a Gemma 4"), std::string::npos);
}

}  // namespace
}  // namespace ug
