// Shapes of the OpenAI objects, SSE framing and the Prometheus text.
#include <gtest/gtest.h>

#include "server/api_error.h"
#include "server/metrics.h"
#include "server/openai_response.h"
#include "server/sse.h"

namespace ug::server {
namespace {

using nlohmann::json;

TEST(Response, ChatCompletionObject) {
  ResponseContext ctx{"chatcmpl-1", 123, "m"};
  ChatChoice a{.index = 0, .content = "hi", .reasoning = "r", .finish_reason = "stop"};
  ChatChoice b{.index = 1, .finish_reason = "tool_calls"};
  b.tool_calls.push_back({"f", {{"x", 1}}});
  b.tool_call_ids.push_back("call_1");
  b.logprobs_requested = true;
  b.logprobs.push_back({"tok", -0.5f, {{"alt", -1.0f}}});
  json j = chat_completion_json(
      ctx, {a, b}, Usage{.prompt_tokens = 5, .completion_tokens = 3, .cached_tokens = 1});
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["created"], 123);
  EXPECT_EQ(j["choices"][0]["message"], json({{"role", "assistant"},
                                              {"content", "hi"},
                                              {"reasoning_content", "r"},
                                              {"refusal", nullptr}}));
  EXPECT_TRUE(j["choices"][0]["logprobs"].is_null());
  const json& m = j["choices"][1]["message"];
  EXPECT_TRUE(m["content"].is_null());
  EXPECT_FALSE(m.contains("reasoning_content"));
  EXPECT_EQ(m["tool_calls"][0], json({{"id", "call_1"},
                                      {"type", "function"},
                                      {"function", {{"name", "f"}, {"arguments", "{\"x\":1}"}}}}));
  EXPECT_EQ(
      j["choices"][1]["logprobs"]["content"][0],
      json({{"token", "tok"},
            {"logprob", -0.5},
            {"bytes", {116, 111, 107}},
            {"top_logprobs", {{{"token", "alt"}, {"logprob", -1.0}, {"bytes", {97, 108, 116}}}}}}));
  EXPECT_EQ(j["usage"], json({{"prompt_tokens", 5},
                              {"completion_tokens", 3},
                              {"total_tokens", 8},
                              {"prompt_tokens_details", {{"cached_tokens", 1}}},
                              {"completion_tokens_details", {{"reasoning_tokens", 0}}}}));
}

TEST(Response, ChunksAndSse) {
  ResponseContext ctx{"chatcmpl-1", 1, "m"};
  json c = chat_chunk_json(ctx, 2, {{"content", "x"}}, "", nullptr, true);
  EXPECT_EQ(c["object"], "chat.completion.chunk");
  EXPECT_EQ(c["choices"][0]["index"], 2);
  EXPECT_TRUE(c["choices"][0]["finish_reason"].is_null());
  EXPECT_TRUE(c.contains("usage") && c["usage"].is_null());
  EXPECT_FALSE(chat_chunk_json(ctx, 0, json::object(), "stop", nullptr, false).contains("usage"));
  json u = chat_usage_chunk_json(ctx, {});
  EXPECT_TRUE(u["choices"].empty());
  EXPECT_EQ(u["usage"]["total_tokens"], 0);
  EXPECT_EQ(sse_event(json{{"a", 1}}), "data: {\"a\":1}\n\n");
  EXPECT_EQ(sse_done(), "data: [DONE]\n\n");
  EXPECT_EQ(sse_keepalive().substr(0, 1), ":");
  EXPECT_EQ(dump_json(json("\xff")),
            "\"\xef\xbf\xbd\"");  // invalid UTF-8 is replaced, never thrown
  json t = text_completion_json(
      {"cmpl-1", 1, "m"}, {TextChoice{.index = 0, .text = "ab", .finish_reason = "length"}}, {});
  EXPECT_EQ(t["object"], "text_completion");
  EXPECT_EQ(t["choices"][0]["text"], "ab");
  json lp = text_logprobs_json({{"a", -1, {{"b", -2}}}, {"cd", -3, {}}}, 4);
  EXPECT_EQ(lp["text_offset"], json({4, 5}));
  EXPECT_EQ(lp["top_logprobs"][0], json({{"b", -2.0}}));
  EXPECT_EQ(new_tool_call_id().substr(0, 5), "call_");
  EXPECT_NE(new_response_id("x-"), new_response_id("x-"));
}

TEST(Response, ErrorObject) {
  ApiError e(429, "busy", "", "queue_full");
  EXPECT_EQ(error_body(e), json({{"error",
                                  {{"message", "busy"},
                                   {"type", "rate_limit_error"},
                                   {"param", nullptr},
                                   {"code", "queue_full"}}}}));
  EXPECT_EQ(ApiError(401, "x").type, "authentication_error");
  EXPECT_EQ(ApiError(500, "x").type, "server_error");
  EXPECT_EQ(model_list_json("m", 7)["data"][0]["owned_by"], "unigemma");
}

TEST(Metrics, PrometheusText) {
  Metrics m;
  m.request_done("/v1/completions", 200);
  m.request_done("/v1/completions", 200);
  m.request_done("/v1/completions", 400);
  m.time_to_first_token(0.02);
  m.time_to_first_token(100);
  m.tokens(10, 4, 5);
  SchedulerStats s;
  s.waiting = 3;
  s.prompt_tokens_total = 10;
  s.prompt_tokens_cached = 4;
  s.kv_bytes_sequences = 30;
  s.kv_bytes_prefix_cache = 12;
  s.kv_bytes_used = 42;
  std::string t = m.render(s);
  for (const char* line :
       {"unigemma_requests_total{endpoint=\"/v1/completions\",status=\"200\"} 2\n",
        "unigemma_requests_total{endpoint=\"/v1/completions\",status=\"400\"} 1\n",
        "unigemma_queue_depth 3\n", "unigemma_prefix_cache_hit_rate 0.4\n",
        "unigemma_kv_cache_used_bytes 42\n", "unigemma_kv_cache_sequences_bytes 30\n",
        "unigemma_prefix_cache_bytes 12\n",
        "unigemma_time_to_first_token_seconds_bucket{le=\"0.01\"} 0\n",
        "unigemma_time_to_first_token_seconds_bucket{le=\"0.025\"} 1\n",
        "unigemma_time_to_first_token_seconds_bucket{le=\"+Inf\"} 2\n",
        "unigemma_time_to_first_token_seconds_count 2\n", "unigemma_generation_tokens_total 5\n",
        "# TYPE unigemma_inter_token_latency_seconds histogram\n"})
    EXPECT_NE(t.find(line), std::string::npos) << line << t;
}

}  // namespace
}  // namespace ug::server
