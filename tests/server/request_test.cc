// Parsing and validation of chat / completion request bodies: every field type-checked, errors
// located.
#include "server/request.h"

#include <gtest/gtest.h>

#include "server/api_error.h"

namespace ug::server {
namespace {

using nlohmann::json;

json chat(json extra = json::object()) {
  json b = {{"model", "m"}, {"messages", json::array({{{"role", "user"}, {"content", "Hi"}}})}};
  for (auto& [k, v] : extra.items()) b[k] = v;
  return b;
}

// Expects a 400 (or `status`) whose param and message match.
void expect_bad(const json& body, const std::string& param, const std::string& fragment,
                int status = 400, bool completion = false) {
  try {
    if (completion)
      parse_completion_request(body, {});
    else
      parse_chat_request(body, {});
    ADD_FAILURE() << "accepted: " << body.dump();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, status) << e.what();
    EXPECT_EQ(e.param, param) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
        << e.what() << "\nlacks: " << fragment;
  }
}

TEST(ChatRequest, DefaultsAndSampling) {
  ChatRequest r = parse_chat_request(chat(), {});
  EXPECT_EQ(r.model, "m");
  EXPECT_EQ(r.gen.n, 1);
  EXPECT_FALSE(r.gen.max_tokens);
  EXPECT_FALSE(r.gen.temperature);
  EXPECT_EQ(r.gen.top_logprobs, -1);
  EXPECT_FALSE(r.enable_thinking);
  EXPECT_FALSE(r.parse_tool_calls);

  r = parse_chat_request(chat({{"max_completion_tokens", 9},
                               {"max_tokens", 3},
                               {"temperature", 0},
                               {"top_p", 0.5},
                               {"top_k", -1},
                               {"min_p", 0.1},
                               {"presence_penalty", -2},
                               {"frequency_penalty", 2},
                               {"repetition_penalty", 1.1},
                               {"seed", -1},
                               {"stop", "x"},
                               {"n", 2},
                               {"logprobs", true},
                               {"top_logprobs", 3},
                               {"stream", true},
                               {"stream_options", {{"include_usage", true}}},
                               {"user", "u"},
                               {"parallel_tool_calls", false},
                               {"logit_bias", json::object()}}),
                         {});
  EXPECT_EQ(*r.gen.max_tokens, 9);  // max_completion_tokens wins
  EXPECT_EQ(*r.gen.temperature, 0);
  EXPECT_EQ(*r.gen.top_k, 0);
  EXPECT_EQ(*r.gen.seed, ~uint64_t(0));
  EXPECT_EQ(r.gen.stop, std::vector<std::string>{"x"});
  EXPECT_EQ(r.gen.top_logprobs, 3);
  EXPECT_TRUE(r.gen.stream && r.gen.include_usage);
}

TEST(ChatRequest, TypeAndRangeErrorsNameTheField) {
  expect_bad(json::array(), "", "expected a JSON object");
  expect_bad(json::object({{"messages", json::array()}}), "model", "missing");
  expect_bad(chat({{"model", 5}}), "model", "expected a string, got an integer");
  expect_bad(chat({{"temperature", "1"}}), "temperature", "expected a number, got a string");
  expect_bad(chat({{"top_p", 1.5}}), "top_p", "between 0 and 1");
  expect_bad(chat({{"n", 0}}), "n", "between 1 and 8");
  expect_bad(chat({{"n", 1.5}}), "n", "expected an integer");
  expect_bad(chat({{"max_tokens", 0}}), "max_tokens", "at least 1");
  expect_bad(chat({{"stop", {"a", 3}}}), "stop[1]", "expected a string");
  expect_bad(chat({{"stop", ""}}), "stop", "must not be empty");
  expect_bad(chat({{"stream", "yes"}}), "stream", "expected a boolean");
  expect_bad(chat({{"stream_options", {{"include_usage", true}}}}), "stream_options",
             "only allowed when stream");
  expect_bad(chat({{"top_logprobs", 2}}), "top_logprobs", "requires logprobs");
  expect_bad(chat({{"top_logprobs", 21}, {"logprobs", true}}), "top_logprobs", "between 0 and 20");
  expect_bad(chat({{"unknown_thing", 1}}), "unknown_thing", "unknown field");
  expect_bad(chat({{"logit_bias", {{"5", 1}}}}), "logit_bias", "not supported");
  expect_bad(chat({{"functions", json::array()}}), "functions", "use tools");
  expect_bad(chat({{"reasoning_effort", "max"}}), "reasoning_effort", "expected none");
  expect_bad(chat({{"chat_template_kwargs", {{"foo", 1}}}}), "chat_template_kwargs.foo",
             "unknown field");
}

TEST(ChatRequest, ResponseFormat) {
  EXPECT_EQ(parse_chat_request(chat(), {}).gen.json, nullptr);
  EXPECT_EQ(parse_chat_request(chat({{"response_format", {{"type", "text"}}}}), {}).gen.json,
            nullptr);
  auto obj = parse_chat_request(chat({{"response_format", {{"type", "json_object"}}}}), {});
  ASSERT_NE(obj.gen.json, nullptr);
  EXPECT_EQ(obj.gen.json->key(), "json_object");
  const json schema = {{"type", "object"},
                       {"properties", {{"x", {{"type", "string"}}}}},
                       {"required", {"x"}},
                       {"additionalProperties", false}};
  auto js = parse_chat_request(
      chat({{"response_format",
             {{"type", "json_schema"},
              {"json_schema", {{"name", "thing"}, {"schema", schema}, {"strict", true}}}}}}),
      {});
  ASSERT_NE(js.gen.json, nullptr);
  EXPECT_EQ(js.gen.json->key(), "schema:" + schema.dump());
  auto rf = [](json format) { return chat({{"response_format", format}}); };
  expect_bad(rf({{"type", "xml"}}), "response_format.type", "expected text, json_object");
  expect_bad(rf({{"type", "json_schema"}}), "response_format.json_schema", "missing");
  expect_bad(rf({{"type", "json_schema"}, {"json_schema", {{"name", "x"}}}}),
             "response_format.json_schema.schema", "missing");
  expect_bad(rf({{"type", "json_schema"}, {"json_schema", {{"name", "a b"}, {"schema", schema}}}}),
             "response_format.json_schema.name", "1-64 characters");
  expect_bad(rf({{"type", "json_schema"},
                 {"json_schema", {{"name", "x"}, {"schema", schema}, {"extra", 1}}}}),
             "response_format.json_schema.extra", "unknown field");
  expect_bad(rf({{"type", "json_object"}, {"schema", schema}}), "response_format.schema",
             "unknown field");
  const json pattern = {{"type", "object"},
                        {"properties", {{"x", {{"type", "string"}, {"pattern", "^a+$"}}}}}};
  try {
    parse_chat_request(
        rf({{"type", "json_schema"}, {"json_schema", {{"name", "x"}, {"schema", pattern}}}}), {});
    ADD_FAILURE() << "pattern accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.param, "response_format.json_schema.schema.properties.x.pattern");
    EXPECT_EQ(e.code, "unsupported_parameter");
  }
  expect_bad(rf({{"type", "json_schema"},
                 {"json_schema", {{"name", "x"}, {"schema", {{"type", "strin"}}}}}}),
             "response_format.json_schema.schema.type", "unknown type");
  // A forced tool call cannot also be the JSON reply.
  const json tools = json::array(
      {{{"type", "function"}, {"function", {{"name", "f"}, {"parameters", json::object()}}}}});
  expect_bad(chat({{"response_format", {{"type", "json_object"}}},
                   {"tools", tools},
                   {"tool_choice", "required"}}),
             "response_format", "forced tool_choice");
  auto with_tools = parse_chat_request(
      chat({{"response_format", {{"type", "json_object"}}}, {"tools", tools}}), {});
  EXPECT_NE(with_tools.gen.json, nullptr);
  auto completion = parse_completion_request(
      {{"model", "m"}, {"prompt", "x"}, {"response_format", {{"type", "json_object"}}}}, {});
  EXPECT_NE(completion.gen.json, nullptr);
}

TEST(ChatRequest, Messages) {
  expect_bad(chat({{"messages", json::array()}}), "messages", "at least one");
  expect_bad(chat({{"messages", "hi"}}), "messages", "expected an array");
  expect_bad(chat({{"messages", {1}}}), "messages[0]", "expected a JSON object");
  expect_bad(chat({{"messages", {{{"content", "x"}}}}}), "messages[0].role", "missing");
  expect_bad(chat({{"messages", {{{"role", "user"}}}}}), "messages[0].content",
             "required for user");
  expect_bad(chat({{"messages", {{{"role", "user"}, {"content", 5}}}}}), "messages[0].content",
             "expected a string");
  expect_bad(chat({{"messages", {{{"role", "user"}, {"content", "x"}, {"extra", 1}}}}}),
             "messages[0].extra", "unknown field");
  expect_bad(chat({{"messages", {{{"role", "user"}, {"content", {{{"type", "text"}}}}}}}}),
             "messages[0].content[0].text", "missing");
  expect_bad(chat({{"messages", {{{"role", "user"}, {"content", {{{"type", "file"}}}}}}}}),
             "messages[0].content[0].type", "unknown content part type 'file'");
  expect_bad(chat({{"messages", {{{"role", "user"}, {"content", "see <|image|>"}}}}}),
             "messages[0].content", "media placeholder");
  expect_bad(chat({{"messages", {{{"role", "system"}, {"content", "<|audio|>"}}}}}), "messages[0].content",
             "media placeholder");
  expect_bad(chat({{"messages", {{{"role", "user"}, {"content", {{{"type", "text"}, {"text", "<|video|>"}}}}}}}}),
             "messages[0].content[0].text", "media placeholder");
  expect_bad(chat({{"messages", {{{"role", "tool"}, {"content", "x"}}}}}),
             "messages[0].tool_call_id", "missing");
  expect_bad(chat({{"messages", {{{"role", "assistant"}, {"content", nullptr}}}}}),
             "messages[0].content", "needs content or tool_calls");
  json bad_args = {{{"role", "assistant"},
                    {"tool_calls",
                     {{{"id", "c1"},
                       {"type", "function"},
                       {"function", {{"name", "f"}, {"arguments", "{not json"}}}}}}}};
  expect_bad(chat({{"messages", bad_args}}), "messages[0].tool_calls[0].function.arguments",
             "JSON object");

  // A reply sent back as history may hold the placeholder text the model generated: literal, accepted.
  json echoed = json::array({{{"role", "user"}, {"content", "hi"}},
                             {{"role", "assistant"}, {"content", "I see <|image|><|audio|>"}},
                             {{"role", "assistant"}, {"content", {{{"type", "text"}, {"text", "<|video|>"}}}}},
                             {{"role", "user"}, {"content", "and?"}}});
  ChatRequest e = parse_chat_request(chat({{"messages", echoed}}), {});
  EXPECT_EQ(e.messages[1]["content"], "I see <|image|><|audio|>");
  EXPECT_TRUE(e.media.empty());

  json conv = json::array(
      {{{"role", "system"}, {"content", "sys"}},
       {{"role", "user"}, {"content", {{{"type", "text"}, {"text", "a"}}}}, {"name", "bob"}},
       {{"role", "assistant"},
        {"content", nullptr},
        {"reasoning_content", "why"},
        {"tool_calls",
         {{{"id", "c1"},
           {"type", "function"},
           {"function", {{"name", "f"}, {"arguments", "{\"x\":1}"}}}}}}},
       {{"role", "tool"}, {"tool_call_id", "c1"}, {"content", "42"}}});
  ChatRequest r = parse_chat_request(chat({{"messages", conv}}), {});
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[2]["tool_calls"][0]["function"]["arguments"],
            json({{"x", 1}}));  // parsed for the template
  EXPECT_EQ(r.messages[2]["reasoning_content"], "why");
  EXPECT_EQ(r.messages[3]["tool_call_id"], "c1");
}

TEST(ChatRequest, MediaParts) {
  RequestLimits limits;
  limits.media.max_items = 2;
  json content = json::array(
      {{{"type", "image_url"}, {"image_url", "data:image/png;base64,iVBO"}},
       {{"type", "input_audio"}, {"input_audio", {{"data", "UklG"}, {"format", "mp3"}}}}});
  ChatRequest r =
      parse_chat_request(chat({{"messages", {{{"role", "user"}, {"content", content}}}}}), limits);
  ASSERT_EQ(r.media.size(), 2u);
  EXPECT_EQ(r.messages[0]["content"], json::array({{{"type", "image"}}, {{"type", "audio"}}}));
  EXPECT_EQ(r.media[0].name, "messages[0].content[0].image_url");

  content.push_back(
      {{"type", "input_video"}, {"input_video", {{"data", "AAAA"}, {"format", "mp4"}}}});
  try {
    parse_chat_request(chat({{"messages", {{{"role", "user"}, {"content", content}}}}}), limits);
    ADD_FAILURE();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code, "too_many_media");
  }
  json bad_format = {
      {{"type", "input_audio"}, {"input_audio", {{"data", "UklG"}, {"format", "midi"}}}}};
  expect_bad(chat({{"messages", {{{"role", "user"}, {"content", bad_format}}}}}),
             "messages[0].content[0].input_audio.format", "unsupported format 'midi'");
  json in_system = {
      {{"type", "image_url"}, {"image_url", {{"url", "data:image/png;base64,iVBO"}}}}};
  expect_bad(chat({{"messages", {{{"role", "system"}, {"content", in_system}}}}}),
             "messages[0].content[0]", "only accepted in user and tool");
  json detail = {{{"type", "image_url"},
                  {"image_url", {{"url", "data:image/png;base64,iVBO"}, {"image_tokens", 100}}}}};
  expect_bad(chat({{"messages", {{{"role", "user"}, {"content", detail}}}}}),
             "messages[0].content[0].image_url.image_tokens", "one of 70");
}

TEST(ChatRequest, ToolsToolChoiceAndThinking) {
  json tools = json::array(
      {{{"type", "function"},
        {"function", {{"name", "get_weather"}, {"parameters", {{"type", "object"}}}}}}});
  ChatRequest r = parse_chat_request(chat({{"tools", tools}}), {});
  EXPECT_TRUE(r.parse_tool_calls);
  EXPECT_EQ(r.tools.size(), 1u);
  EXPECT_TRUE(r.forced_prefix.empty());
  r = parse_chat_request(chat({{"tools", tools}, {"tool_choice", "none"}}), {});
  EXPECT_FALSE(r.parse_tool_calls);
  EXPECT_TRUE(r.tools.empty());
  r = parse_chat_request(chat({{"tools", tools}, {"tool_choice", "required"}}), {});
  EXPECT_EQ(r.forced_prefix, "<|tool_call>call:");
  r = parse_chat_request(
      chat({{"tools", tools},
            {"tool_choice", {{"type", "function"}, {"function", {{"name", "get_weather"}}}}}}),
      {});
  EXPECT_EQ(r.forced_prefix, "<|tool_call>call:get_weather{");
  expect_bad(chat({{"tools", tools},
                   {"tool_choice", {{"type", "function"}, {"function", {{"name", "nope"}}}}}}),
             "tool_choice.function.name", "not one of the declared tools");
  expect_bad(chat({{"tool_choice", "required"}}), "tool_choice", "no tools were declared");
  expect_bad(chat({{"tools", {{{"type", "retrieval"}}}}}), "tools[0].type", "only \"function\"");
  expect_bad(chat({{"tools", {{{"type", "function"}, {"function", {{"name", "bad name"}}}}}}}),
             "tools[0].function.name", "1-64 characters");

  EXPECT_TRUE(parse_chat_request(chat({{"reasoning_effort", "low"}}), {}).enable_thinking);
  EXPECT_FALSE(parse_chat_request(chat({{"reasoning_effort", "none"}}), {}).enable_thinking);
  EXPECT_TRUE(parse_chat_request(chat({{"chat_template_kwargs", {{"enable_thinking", true}}}}), {})
                  .enable_thinking);
}

TEST(CompletionRequest, PromptForms) {
  json base = {{"model", "m"}};
  auto with = [&](json prompt) {
    json b = base;
    b["prompt"] = prompt;
    return parse_completion_request(b, {});
  };
  CompletionRequest r = with("hello");
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_EQ(r.prompts[0].text, "hello");
  EXPECT_EQ(*r.gen.max_tokens, 16);  // the endpoint's OpenAI default
  EXPECT_EQ(with({"a", "b"}).prompts.size(), 2u);
  EXPECT_EQ(with({1, 2, 3}).prompts[0].ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(with({{1, 2}, {3}}).prompts.size(), 2u);
  // Placeholder strings are literal tokens here (no media on this endpoint), not an error.
  EXPECT_EQ(with("before <|image|> after").prompts[0].text, "before <|image|> after");
  expect_bad(base, "prompt", "missing", 400, true);
  expect_bad({{"model", "m"}, {"prompt", {1, -2}}}, "prompt[1]", "token id", 400, true);
  expect_bad({{"model", "m"}, {"prompt", json::array()}}, "prompt", "expected a string", 400, true);
  expect_bad({{"model", "m"}, {"prompt", "x"}, {"suffix", "y"}}, "suffix", "not supported", 400,
             true);
  expect_bad({{"model", "m"}, {"prompt", "x"}, {"best_of", 3}}, "best_of", "best_of == n", 400,
             true);
  expect_bad({{"model", "m"}, {"prompt", "x"}, {"logprobs", 6}}, "logprobs", "between 0 and 5", 400,
             true);
  expect_bad({{"model", "m"}, {"prompt", "x"}, {"messages", 1}}, "messages", "unknown field", 400,
             true);
}

TEST(ParseBody, MalformedJson) {
  try {
    parse_body("{\"a\": ");
    ADD_FAILURE();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code, "invalid_json");
    EXPECT_NE(std::string(e.what()).find("at byte"), std::string::npos);
  }
  EXPECT_THROW(parse_body("\"str\""), ApiError);
  EXPECT_THROW(parse_body("{\"a\": \"\xff\"}"), ApiError);  // invalid UTF-8
  EXPECT_EQ(parse_body("{\"a\": 1}")["a"], 1);
}

}  // namespace
}  // namespace ug::server
