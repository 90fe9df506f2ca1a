// The load generator's measuring parts without a server: SSE parsing under any chunking, what
// counts as a malformed stream, percentiles, and the workload's bodies.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "load/level_report.h"
#include "load/sse_stream.h"
#include "load/workload.h"

namespace ug::load {
namespace {

using nlohmann::json;

std::string event(const json& j) { return "data: " + j.dump() + "\n\n"; }

json chunk(const json& delta, const json& finish = nullptr) {
  return {{"object", "chat.completion.chunk"},
          {"choices", json::array({{{"index", 0}, {"delta", delta}, {"finish_reason", finish}}})},
          {"usage", nullptr}};
}

std::string good_stream() {
  return event(chunk({{"role", "assistant"}, {"content", "Hel"}})) + ": keep-alive\n\n" +
         event(chunk({{"content", "lo"}})) + event(chunk({{"reasoning_content", "hmm"}})) +
         event(chunk(json::object(), "length")) +
         event({{"choices", json::array()},
                {"usage",
                 {{"prompt_tokens", 12},
                  {"completion_tokens", 4},
                  {"prompt_tokens_details", {{"cached_tokens", 8}}}}}}) +
         "data: [DONE]\n\n";
}

TEST(SseStream, ParsesAWholeStream) {
  SseStream s;
  const std::string body = good_stream();
  for (size_t i = 0; i < body.size(); ++i) s.feed(body.substr(i, 1), double(i));  // byte by byte
  s.finish(true);
  const StreamStats& st = s.stats();
  EXPECT_EQ(st.error, "");
  EXPECT_TRUE(st.done);
  EXPECT_TRUE(st.finished);
  EXPECT_EQ(st.content, "Hello");
  EXPECT_EQ(st.prompt_tokens, 12);
  EXPECT_EQ(st.completion_tokens, 4);
  EXPECT_EQ(st.cached_tokens, 8);
  ASSERT_EQ(st.token_chunks_s.size(), 3u);  // first, "lo", reasoning; not the finish-only chunk
  EXPECT_EQ(st.first_token_s, st.token_chunks_s[0]);
  EXPECT_LT(st.token_chunks_s[0], st.token_chunks_s[1]);
}

TEST(SseStream, CrlfAndOneReadGiveTheSameResult) {
  std::string body = good_stream(), crlf;
  for (char c : body) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  SseStream s;
  s.feed(crlf, 0.5);
  s.finish(true);
  EXPECT_EQ(s.stats().error, "");
  EXPECT_EQ(s.stats().content, "Hello");
  EXPECT_EQ(s.stats().first_token_s, 0.5);
}

TEST(SseStream, MalformedStreamsAreErrors) {
  auto error_of = [](const std::string& body, bool usage = true) {
    SseStream s;
    s.feed(body, 0);
    s.finish(usage);
    return s.stats().error;
  };
  const std::string full = good_stream();
  EXPECT_NE(error_of(full.substr(0, full.find("data: [DONE]"))).find("without data: [DONE]"),
            std::string::npos);
  EXPECT_NE(error_of("data: {not json\n\ndata: [DONE]\n\n").find("not a JSON object"),
            std::string::npos);
  EXPECT_NE(error_of(event({{"error", {{"message", "timeout"}}}}) + "data: [DONE]\n\n")
                .find("error event: timeout"),
            std::string::npos);
  EXPECT_NE(error_of(event(chunk({{"content", "x"}})) + "data: [DONE]\n\n").find("finish_reason"),
            std::string::npos);
  EXPECT_NE(error_of(event(chunk({{"content", "x"}}, "stop")) + "data: [DONE]\n\n").find("usage"),
            std::string::npos);
  EXPECT_EQ(error_of(event(chunk({{"content", "x"}}, "stop")) + "data: [DONE]\n\n", false), "");
  EXPECT_NE(error_of(full + event(chunk({{"content", "late"}}))).find("after data: [DONE]"),
            std::string::npos);
  EXPECT_NE(error_of(full + "data: {\"choi").find("inside an event"), std::string::npos);
}

TEST(LevelReport, PercentilesInterpolate) {
  Percentiles p = percentiles({4, 1, 3, 2, 5});
  EXPECT_DOUBLE_EQ(p.p50, 3);
  EXPECT_DOUBLE_EQ(p.p90, 4.6);
  EXPECT_DOUBLE_EQ(p.mean, 3);
  EXPECT_DOUBLE_EQ(p.max, 5);
  EXPECT_EQ(percentiles({}).n, 0);
  EXPECT_DOUBLE_EQ(percentiles({7}).p99, 7);
}

TEST(LevelReport, CountsOutcomesAndThroughput) {
  std::vector<RequestResult> rs(4);
  for (auto& r : rs) {
    r.outcome = Outcome::Ok;
    r.ttft_s = 0.1;
    r.e2e_s = 1.1;
    r.completion_tokens = 11;
    r.prompt_tokens = 20;
    r.cached_tokens = 5;
    r.itl_s = {0.1, 0.1};
  }
  rs[2].outcome = Outcome::Error;
  rs[2].error = "HTTP 500: boom";
  rs[3].outcome = Outcome::Cancelled;
  LevelSummary s = summarize(2, rs, 2.0);
  EXPECT_EQ(s.ok, 2);
  EXPECT_EQ(s.errors, 1);
  EXPECT_EQ(s.cancelled, 1);
  EXPECT_EQ(s.error_samples, std::vector<std::string>{"HTTP 500: boom"});
  EXPECT_DOUBLE_EQ(s.requests_per_s, 1.0);
  EXPECT_DOUBLE_EQ(s.output_tokens_per_s, 11.0);
  EXPECT_DOUBLE_EQ(s.stream_tokens_per_s, 10.0);  // 10 tokens after the first in 1 s
  EXPECT_DOUBLE_EQ(s.cached_fraction, 0.25);
  EXPECT_EQ(s.itl_s.n, 4);
}

TEST(Workload, ConversationsGrowAndBadInputIsBad) {
  WorkloadOptions o{.model = "m", .prompt_words = 5, .prefix_words = 3, .turns = 2};
  Workload w(o, 1);
  json a = json::parse(w.next().body);
  EXPECT_EQ(a["messages"].size(), 2u);  // shared system prompt + user
  EXPECT_EQ(a["temperature"], 0);
  EXPECT_FALSE(a.contains("seed"));
  EXPECT_EQ(a["stream_options"]["include_usage"], true);
  RequestResult ok{.outcome = Outcome::Ok, .content = "re<|video|>ply"};
  w.done(ok);
  json b = json::parse(w.next().body);
  ASSERT_EQ(b["messages"].size(), 4u);  // + assistant reply + next user message
  EXPECT_EQ(b["messages"][0], a["messages"][0]);
  EXPECT_EQ(b["messages"][2]["content"], "re<|video|>ply");  // verbatim: the server takes them as literal tokens
  w.done(ok);
  EXPECT_EQ(json::parse(w.next().body)["messages"].size(), 2u);  // after `turns`, a new one
  Workload other(o, 2);
  EXPECT_EQ(json::parse(other.next().body)["messages"][0], a["messages"][0]);  // prefix shared

  WorkloadOptions bad{.bad_fraction = 1};
  Workload wb(bad, 3);
  for (int i = 0; i < 12; ++i) EXPECT_TRUE(wb.next().expect_rejection);
}

}  // namespace
}  // namespace ug::load
