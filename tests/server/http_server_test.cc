// The whole HTTP layer in-process against a scripted backend: routes, OpenAI shapes, SSE streaming,
// tool calls, reasoning, errors as JSON, auth, body limit, 429, disconnect -> cancel, timeout,
// shutdown.
#include "server/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "fake_backend.h"
#include "server/base64.h"

namespace ug::server {
namespace {

using nlohmann::json;
using test::FakeBackend;

class ServerTest : public ::testing::Test {
 protected:
  void start(ServerOptions o = {}) {
    o.port = 0;
    o.model_name = "test-model";
    options_ = o;
    server_ = std::make_unique<HttpServer>(backend_, o);
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->serve(); });
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
    client_->set_read_timeout(30, 0);
  }
  void TearDown() override {
    if (server_) server_->shutdown(0);
    if (thread_.joinable()) thread_.join();
  }
  httplib::Result post(const std::string& path, const std::string& body,
                       httplib::Headers headers = {}) {
    return client_->Post(path.c_str(), headers, body, "application/json");
  }
  static json chat_body(json extra = json::object()) {
    json b = {{"model", "test-model"},
              {"messages", json::array({{{"role", "user"}, {"content", "Hi"}}})}};
    for (auto& [k, v] : extra.items()) b[k] = v;
    return b;
  }
  // Posts and checks an OpenAI error object; returns it.
  json expect_error(const std::string& body, int status, const std::string& fragment,
                    const std::string& path = "/v1/chat/completions") {
    auto r = post(path, body);
    EXPECT_TRUE(r) << "no response";
    if (!r) return {};
    EXPECT_EQ(r->status, status) << r->body;
    json j = json::parse(r->body, nullptr, false);
    EXPECT_TRUE(j.contains("error")) << r->body;
    if (!j.contains("error")) return {};
    EXPECT_NE(j["error"]["message"].get<std::string>().find(fragment), std::string::npos)
        << r->body;
    EXPECT_TRUE(j["error"]["type"].is_string());
    return j["error"];
  }
  static std::vector<json> sse_events(const std::string& body, bool* done = nullptr) {
    std::vector<json> out;
    size_t pos = 0;
    while (pos < body.size()) {
      size_t end = body.find("\n\n", pos);
      if (end == std::string::npos) end = body.size();
      std::string ev = body.substr(pos, end - pos);
      pos = end + 2;
      if (ev.rfind("data: ", 0) != 0) continue;
      std::string data = ev.substr(6);
      if (data == "[DONE]") {
        if (done) *done = true;
        continue;
      }
      out.push_back(json::parse(data));
    }
    return out;
  }

  FakeBackend backend_;
  ServerOptions options_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  int port_ = 0;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(ServerTest, ModelsHealthMetrics) {
  start();
  auto m = client_->Get("/v1/models");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 200);
  json list = json::parse(m->body);
  EXPECT_EQ(list["object"], "list");
  EXPECT_EQ(list["data"][0]["id"], "test-model");
  EXPECT_EQ(json::parse(client_->Get("/v1/models/test-model")->body)["id"], "test-model");
  EXPECT_EQ(client_->Get("/v1/models/other")->status, 404);
  EXPECT_EQ(client_->Get("/health")->status, 200);
  post("/v1/chat/completions", chat_body().dump());
  // The request counter is updated just after the response is written: poll briefly.
  auto metrics = client_->Get("/metrics");
  for (int i = 0;
       i < 100 && metrics->body.find("completions\",status=\"200\"} 1") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    metrics = client_->Get("/metrics");
  }
  ASSERT_TRUE(metrics);
  for (const char* name :
       {"unigemma_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"} 1",
        "unigemma_requests_total{endpoint=\"/v1/models\",status=\"404\"} 1",
        "unigemma_time_to_first_token_seconds_bucket", "unigemma_queue_depth",
        "unigemma_kv_cache_usage_ratio 0.1", "unigemma_generation_tokens_total 3",
        "unigemma_scheduler_step_seconds_total 2.5",
        "unigemma_scheduler_forward_seconds_total 2\n",
        "unigemma_scheduler_host_seconds_total{phase=\"admit\"} 0.125\n",
        "unigemma_scheduler_host_seconds_total{phase=\"stream\"} 0.25\n"})
    EXPECT_NE(metrics->body.find(name), std::string::npos) << name << "\n" << metrics->body;
}

TEST_F(ServerTest, ChatNonStreaming) {
  start();
  backend_.script = [](const SequenceParams&) {
    return std::vector<std::string>{"<|channel>", "thought\n",  "secret plan",
                                    "<channel|>", "The answer", " is 4."};
  };
  auto r =
      post("/v1/chat/completions", chat_body({{"reasoning_effort", "high"}, {"seed", 7}}).dump());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["model"], "test-model");
  EXPECT_EQ(j["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  const json& msg = j["choices"][0]["message"];
  EXPECT_EQ(msg["role"], "assistant");
  EXPECT_EQ(msg["content"], "The answer is 4.");
  EXPECT_EQ(msg["reasoning_content"], "secret plan");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(j["usage"]["completion_tokens"], 7);  // 6 pieces + the stop token
  EXPECT_EQ(j["usage"]["total_tokens"], j["usage"]["prompt_tokens"].get<int>() + 7);
  EXPECT_EQ(j["usage"]["prompt_tokens_details"]["cached_tokens"], 2);
  EXPECT_GT(j["usage"]["completion_tokens_details"]["reasoning_tokens"].get<int>(), 0);
  // Thinking on puts <|think|> in the prompt; the seed reaches the sampler.
  EXPECT_NE(backend_.last_prompt_text.find("<|think|>"), std::string::npos);
  EXPECT_EQ(backend_.submitted.at(0).sampling.seed, 7u);
}

TEST_F(ServerTest, ChatStreamingWithUsageAndLogprobs) {
  start();
  auto r = post("/v1/chat/completions", chat_body({{"stream", true},
                                                   {"stream_options", {{"include_usage", true}}},
                                                   {"logprobs", true},
                                                   {"top_logprobs", 2}})
                                            .dump());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/event-stream");
  bool done = false;
  auto events = sse_events(r->body, &done);
  EXPECT_TRUE(done);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events[0]["choices"][0]["delta"]["role"], "assistant");
  std::string text;
  int n_logprobs = 0;
  std::string finish;
  for (const auto& e : events) {
    EXPECT_EQ(e["object"], "chat.completion.chunk");
    EXPECT_TRUE(e.contains("usage"));
    if (e["choices"].empty()) continue;
    const json& c = e["choices"][0];
    if (c["delta"].contains("content")) text += c["delta"]["content"].get<std::string>();
    if (c["logprobs"].is_object()) {
      for (const auto& t : c["logprobs"]["content"]) {
        ++n_logprobs;
        EXPECT_EQ(t["top_logprobs"].size(), 2u);
      }
    }
    if (c["finish_reason"].is_string()) finish = c["finish_reason"];
  }
  EXPECT_EQ(text, "Hello world");
  EXPECT_EQ(n_logprobs, 2);  // the stop token has no entry
  EXPECT_EQ(finish, "stop");
  const json& last = events.back();
  EXPECT_TRUE(last["choices"].empty());
  EXPECT_EQ(last["usage"]["completion_tokens"], 3);
}

TEST_F(ServerTest, StreamedReasoningNeverReachesContent) {
  start();
  backend_.script = [](const SequenceParams&) {
    return std::vector<std::string>{"<|chan", "nel>thought\n", "step one", " <chan",
                                    "nel|>",  "  Answer",      " <tu"};
  };
  auto r = post("/v1/chat/completions", chat_body({{"stream", true}}).dump());
  ASSERT_EQ(r->status, 200) << r->body;
  std::string reasoning, content;
  for (const auto& e : sse_events(r->body)) {
    if (e["choices"].empty()) continue;
    const json& d = e["choices"][0]["delta"];
    if (d.contains("reasoning_content")) reasoning += d["reasoning_content"].get<std::string>();
    if (d.contains("content")) content += d["content"].get<std::string>();
  }
  EXPECT_EQ(reasoning, "step one");
  EXPECT_EQ(content, "Answer <tu");  // an unfinished marker at the very end is text
  auto whole = json::parse(post("/v1/chat/completions", chat_body().dump())->body);
  EXPECT_EQ(whole["choices"][0]["message"]["content"], content);
  EXPECT_EQ(whole["choices"][0]["message"]["reasoning_content"], reasoning);
}

TEST_F(ServerTest, ToolCallRoundTrip) {
  start();
  backend_.script = [](const SequenceParams&) {
    return std::vector<std::string>{"<|tool_call>", "call:get_weather{city:", "<|\"|>Paris<|\"|>}",
                                    "<tool_call|>"};
  };
  json tools = json::array({{{"type", "function"},
                             {"function",
                              {{"name", "get_weather"},
                               {"description", "Weather of a city"},
                               {"parameters",
                                {{"type", "object"},
                                 {"properties", {{"city", {{"type", "string"}}}}},
                                 {"required", {"city"}}}}}}}});
  auto r = post("/v1/chat/completions", chat_body({{"tools", tools}}).dump());
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  const json& msg = j["choices"][0]["message"];
  EXPECT_TRUE(msg["content"].is_null());
  ASSERT_EQ(msg["tool_calls"].size(), 1u);
  const json& call = msg["tool_calls"][0];
  EXPECT_EQ(call["type"], "function");
  EXPECT_EQ(call["function"]["name"], "get_weather");
  EXPECT_EQ(json::parse(call["function"]["arguments"].get<std::string>()),
            json({{"city", "Paris"}}));
  EXPECT_EQ(j["choices"][0]["finish_reason"], "tool_calls");
  EXPECT_NE(backend_.last_prompt_text.find("<|tool>declaration:get_weather"), std::string::npos);

  // The client sends the call and its result back; the template renders both.
  json messages = json::array(
      {{{"role", "user"}, {"content", "Weather in Paris?"}},
       {{"role", "assistant"}, {"content", nullptr}, {"tool_calls", msg["tool_calls"]}},
       {{"role", "tool"}, {"tool_call_id", call["id"]}, {"content", "{\"temp\": 18}"}}});
  backend_.script = [](const SequenceParams&) { return std::vector<std::string>{"18 degrees."}; };
  r = post("/v1/chat/completions",
           chat_body({{"tools", tools}, {"messages", messages}, {"stream", true}}).dump());
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_NE(backend_.last_prompt_text.find(
                "<|tool_call>call:get_weather{city:<|\"|>Paris<|\"|>}<tool_call|>"
                "<|tool_response>response:get_weather"),
            std::string::npos)
      << backend_.last_prompt_text;

  // Streaming tool-call deltas, and tool_choice naming a function forces the call's start into the
  // prompt.
  backend_.script = [](const SequenceParams&) {
    return std::vector<std::string>{"city:<|\"|>Rome<|\"|>}", "<tool_call|>"};
  };
  r = post(
      "/v1/chat/completions",
      chat_body({{"tools", tools},
                 {"stream", true},
                 {"tool_choice", {{"type", "function"}, {"function", {{"name", "get_weather"}}}}}})
          .dump());
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(backend_.last_prompt_text.substr(backend_.last_prompt_text.size() - 29),
            "<|tool_call>call:get_weather{");
  json delta_call;
  std::string finish;
  for (const auto& e : sse_events(r->body)) {
    if (e["choices"].empty()) continue;
    if (e["choices"][0]["delta"].contains("tool_calls"))
      delta_call = e["choices"][0]["delta"]["tool_calls"][0];
    if (e["choices"][0]["finish_reason"].is_string()) finish = e["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(delta_call["index"], 0);
  EXPECT_EQ(delta_call["function"]["name"], "get_weather");
  EXPECT_EQ(json::parse(delta_call["function"]["arguments"].get<std::string>()),
            json({{"city", "Rome"}}));
  EXPECT_EQ(finish, "tool_calls");
}

TEST_F(ServerTest, NChoicesSeedsAndStops) {
  start();
  auto r = post(
      "/v1/chat/completions",
      chat_body({{"n", 3}, {"seed", 100}, {"stop", {"END"}}, {"temperature", 0.5}, {"top_k", 5}})
          .dump());
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  ASSERT_EQ(j["choices"].size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(j["choices"][i]["index"], i);
  ASSERT_EQ(backend_.submitted.size(), 3u);
  std::set<uint64_t> seeds;
  for (const auto& p : backend_.submitted) {
    seeds.insert(p.sampling.seed);
    EXPECT_EQ(p.stop_strings, std::vector<std::string>{"END"});
    EXPECT_FLOAT_EQ(p.sampling.temperature, 0.5f);
    EXPECT_EQ(p.sampling.top_k, 5);
  }
  EXPECT_EQ(seeds, (std::set<uint64_t>{100, 101, 102}));
  EXPECT_EQ(j["usage"]["completion_tokens"], 9);
}

TEST_F(ServerTest, MediaPartsReachTheBackend) {
  start();
  const std::string png = "\x89PNG fake";
  const std::string b64 = base64_encode(reinterpret_cast<const uint8_t*>(png.data()), png.size());
  json content = json::array(
      {{{"type", "text"}, {"text", "What is this?"}},
       {{"type", "image_url"},
        {"image_url", {{"url", "data:image/png;base64," + b64}, {"detail", "low"}}}},
       {{"type", "input_audio"}, {"input_audio", {{"data", b64}, {"format", "wav"}}}},
       {{"type", "video_url"}, {"video_url", {{"url", "data:video/mp4;base64," + b64}}}}});
  auto r = post(
      "/v1/chat/completions",
      chat_body({{"messages", json::array({{{"role", "user"}, {"content", content}}})}}).dump());
  ASSERT_EQ(r->status, 200) << r->body;
  ASSERT_EQ(backend_.last_media.size(), 3u);
  EXPECT_EQ(backend_.last_media[0].kind, MediaKind::Image);
  EXPECT_EQ(backend_.last_media[0].image_tokens, 70);
  EXPECT_EQ(backend_.last_media[1].kind, MediaKind::Audio);
  EXPECT_EQ(backend_.last_media[2].kind, MediaKind::Video);
  EXPECT_EQ(std::string(backend_.last_media[1].bytes->begin(), backend_.last_media[1].bytes->end()),
            png);
  EXPECT_NE(backend_.last_prompt_text.find("What is this?<|image|><|audio|><|video|>"),
            std::string::npos);

  // Broken media (the decoder's error) and bad base64 are 400s naming the part.
  const std::string bad = base64_encode(reinterpret_cast<const uint8_t*>("BADDATA"), 7);
  content[1]["image_url"]["url"] = "data:image/png;base64," + bad;
  expect_error(
      chat_body({{"messages", json::array({{{"role", "user"}, {"content", content}}})}}).dump(),
      400, "corrupt media");
  content[1]["image_url"]["url"] = "data:image/png;base64,%%%";
  json e = expect_error(
      chat_body({{"messages", json::array({{{"role", "user"}, {"content", content}}})}}).dump(),
      400, "invalid base64");
  EXPECT_EQ(e["param"], "messages[0].content[1].image_url.url");
}

TEST_F(ServerTest, BadInputIsAJsonError) {
  ServerOptions o;
  o.max_body_bytes = 4096;
  start(o);
  expect_error("{\"model\": ", 400, "malformed JSON");
  expect_error("[1,2]", 400, "JSON object");
  expect_error(chat_body({{"temperature", "hot"}}).dump(), 400, "temperature");
  expect_error(chat_body({{"temperature", 3}}).dump(), 400, "between 0 and 2");
  json e = expect_error(chat_body({{"frobnicate", true}}).dump(), 400, "unknown field");
  EXPECT_EQ(e["param"], "frobnicate");
  expect_error(chat_body({{"messages", json::array()}}).dump(), 400, "at least one message");
  expect_error(
      chat_body({{"messages", json::array({{{"role", "wizard"}, {"content", "x"}}})}}).dump(), 400,
      "unknown role");
  e = expect_error(chat_body({{"model", "gpt-5"}}).dump(), 404, "does not exist");
  EXPECT_EQ(e["code"], "model_not_found");
  expect_error(chat_body({{"max_tokens", 5000}}).dump(), 400, "maximum context length");
  e = expect_error(
      chat_body(
          {{"response_format",
            {{"type", "json_schema"},
             {"json_schema", {{"name", "x"}, {"schema", {{"type", "integer"}, {"minimum", 1}}}}}}}})
          .dump(),
      400, "not supported");
  EXPECT_EQ(e["param"], "response_format.json_schema.schema.minimum");
  EXPECT_EQ(e["code"], "unsupported_parameter");
  expect_error(std::string(5000, ' '), 413, "exceeds the server limit");
  expect_error("{}", 400, "model", "/v1/completions");
  auto r = client_->Get("/v1/nothing");
  EXPECT_EQ(r->status, 404);
  EXPECT_TRUE(json::parse(r->body).contains("error"));
  // The server keeps serving.
  EXPECT_EQ(post("/v1/chat/completions", chat_body().dump())->status, 200);
}

TEST_F(ServerTest, ResponseFormatReachesTheScheduler) {
  start();
  backend_.script = [](const SequenceParams&) { return std::vector<std::string>{"{\"a\":", "1}"}; };
  const json schema = {{"type", "object"}, {"properties", {{"a", {{"type", "integer"}}}}}};
  auto r = post(
      "/v1/chat/completions",
      chat_body({{"response_format",
                  {{"type", "json_schema"}, {"json_schema", {{"name", "a"}, {"schema", schema}}}}},
                 {"reasoning_effort", "high"},
                 {"n", 2}})
          .dump());
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["choices"][0]["message"]["content"], "{\"a\":1}");
  ASSERT_EQ(backend_.submitted.size(), 2u);
  for (const auto& p : backend_.submitted) {
    ASSERT_NE(p.constraint.json, nullptr);
    EXPECT_EQ(p.constraint.json->key(), "schema:" + schema.dump());
    EXPECT_TRUE(p.constraint.allow_thought);  // thinking on: the JSON follows the thought channel
    EXPECT_FALSE(p.constraint.allow_tool_calls);
  }
  backend_.submitted.clear();
  const json tools = json::array(
      {{{"type", "function"}, {"function", {{"name", "f"}, {"parameters", json::object()}}}}});
  r = post(
      "/v1/completions",
      json{{"model", "test-model"}, {"prompt", "x"}, {"response_format", {{"type", "json_object"}}}}
          .dump());
  ASSERT_EQ(r->status, 200) << r->body;
  r = post("/v1/chat/completions",
           chat_body({{"response_format", {{"type", "json_object"}}}, {"tools", tools}}).dump());
  ASSERT_EQ(r->status, 200) << r->body;
  ASSERT_EQ(backend_.submitted.size(), 2u);
  EXPECT_EQ(backend_.submitted[0].constraint.json->key(), "json_object");
  EXPECT_FALSE(backend_.submitted[0].constraint.allow_tool_calls);
  EXPECT_TRUE(backend_.submitted[1].constraint.allow_tool_calls);
  EXPECT_FALSE(backend_.submitted[1].constraint.allow_thought);
}

TEST_F(ServerTest, ApiKey) {
  ServerOptions o;
  o.api_key = "sekret";
  start(o);
  EXPECT_EQ(client_->Get("/health")->status, 200);
  auto r = client_->Get("/v1/models");
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(json::parse(r->body)["error"]["code"], "invalid_api_key");
  EXPECT_EQ(client_->Get("/v1/models", {{"Authorization", "Bearer wrong"}})->status, 401);
  EXPECT_EQ(client_->Get("/v1/models", {{"Authorization", "Bearer sekret"}})->status, 200);
}

TEST_F(ServerTest, FullQueueIs429WithRetryAfter) {
  start();
  backend_.max_waiting = 0;
  auto r = post("/v1/chat/completions", chat_body().dump());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 429);
  EXPECT_EQ(r->get_header_value("Retry-After"), "1");
  EXPECT_EQ(json::parse(r->body)["error"]["type"], "rate_limit_error");
}

TEST_F(ServerTest, TimeoutAndEngineFailure) {
  ServerOptions o;
  o.timeout_s = 0.05;
  start(o);
  backend_.token_delay = std::chrono::milliseconds(20);
  backend_.script = [](const SequenceParams&) { return std::vector<std::string>(100, "x"); };
  expect_error(chat_body().dump(), 504, "timed out");
  backend_.fail_generation = true;
  expect_error(chat_body().dump(), 500, "decoder exploded");
  auto r = post("/v1/chat/completions", chat_body({{"stream", true}}).dump());
  ASSERT_EQ(r->status, 200);
  auto events = sse_events(r->body);
  ASSERT_FALSE(events.empty());
  EXPECT_TRUE(events.back().contains("error")) << r->body;
}

// Sends a request on a raw socket, reads a little of the answer and hangs up.
void post_and_hang_up(int port, const std::string& body, bool read_first) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  std::string req = fmt::format(
      "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: {}\r\n\r\n{}",
      body.size(), body);
  ASSERT_EQ(send(fd, req.data(), req.size(), 0), ssize_t(req.size()));
  if (read_first) {
    char buf[512];
    ASSERT_GT(recv(fd, buf, sizeof buf, 0), 0);
  } else {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  close(fd);
}

TEST_F(ServerTest, DisconnectCancelsTheSequences) {
  start();
  backend_.token_delay = std::chrono::milliseconds(10);
  backend_.script = [](const SequenceParams&) { return std::vector<std::string>(100000, "x"); };
  post_and_hang_up(port_, chat_body({{"stream", true}, {"n", 2}}).dump(), true);
  post_and_hang_up(port_, chat_body().dump(), false);  // non-streaming, hangs up while waiting
  for (int i = 0; i < 500 && backend_.cancelled_sequences() < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(backend_.cancelled_sequences(), 3);
  backend_.script = [](const SequenceParams&) { return std::vector<std::string>{"ok"}; };
  backend_.token_delay = std::chrono::milliseconds(1);
  EXPECT_EQ(post("/v1/chat/completions", chat_body().dump())->status, 200);
}

TEST_F(ServerTest, GracefulShutdownFinishesOrCancelsStreams) {
  start();
  backend_.token_delay = std::chrono::milliseconds(5);
  backend_.script = [](const SequenceParams&) { return std::vector<std::string>(100000, "x"); };
  std::optional<httplib::Result> r;
  std::thread t([&] {
    r.emplace(post("/v1/chat/completions", chat_body({{"stream", true}}).dump()));
  });
  for (int i = 0; i < 500 && backend_.active() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  server_->shutdown(0.1);
  t.join();
  thread_.join();
  ASSERT_TRUE(r && *r);
  auto events = sse_events((*r)->body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back()["error"]["code"], "server_shutdown");
  server_.reset();
}

TEST_F(ServerTest, TextCompletions) {
  start();
  auto r = post("/v1/completions", json({{"model", "test-model"},
                                         {"prompt", {"a", "b"}},
                                         {"n", 2},
                                         {"echo", true},
                                         {"logprobs", 1},
                                         {"max_tokens", 5}})
                                       .dump());
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "text_completion");
  ASSERT_EQ(j["choices"].size(), 4u);
  EXPECT_EQ(j["choices"][0]["text"], "aHello world");
  EXPECT_EQ(j["choices"][3]["text"], "bHello world");
  EXPECT_EQ(j["choices"][0]["logprobs"]["tokens"], json({"t1000", "t1001"}));
  EXPECT_EQ(j["choices"][0]["logprobs"]["text_offset"], json({1, 6}));
  EXPECT_EQ(backend_.submitted[0].max_new_tokens, 5);
  r = post("/v1/completions",
           json({{"model", "test-model"}, {"prompt", "x"}, {"stream", true}}).dump());
  bool done = false;
  std::string text;
  for (const auto& e : sse_events(r->body, &done))
    text += e["choices"][0]["text"].get<std::string>();
  EXPECT_TRUE(done);
  EXPECT_EQ(text, "Hello world");
}

}  // namespace
}  // namespace ug::server
