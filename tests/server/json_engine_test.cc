// response_format end to end over HTTP with the real EngineBackend on the tiny random model (real
// tokenizer, gibberish weights): every reply, streamed or not, greedy or sampled, parses and
// validates against the request's schema; streaming equals non-streaming.
#include <gtest/gtest.h>
#include <httplib.h>

#include <thread>

#include "runtime/json_test_util.h"
#include "runtime/tiny_engine.h"
#include "server/engine_backend.h"
#include "server/http_server.h"

namespace ug::server {
namespace {

using nlohmann::json;

class JsonEngineTest : public ug::test::TinyEngineSuite<JsonEngineTest, 21> {
 protected:
  void SetUp() override {
    ug::test::TinyEngineSuite<JsonEngineTest, 21>::SetUp();
    if (!engine_) return;
    backend_ = std::make_unique<EngineBackend>(*engine_, SchedulerOptions{});
    ServerOptions o;
    o.port = 0;
    o.model_name = "tiny";
    server_ = std::make_unique<HttpServer>(*backend_, o);
    const int port = server_->bind();
    thread_ = std::thread([this] { server_->serve(); });
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port);
    client_->set_read_timeout(120, 0);
  }
  void TearDown() override {
    if (server_) server_->shutdown(0);
    if (thread_.joinable()) thread_.join();
    server_.reset();
    if (backend_) backend_->shutdown(false);
  }
  json chat(json extra) {
    json b = {{"model", "tiny"},
              {"messages", json::array({{{"role", "user"}, {"content", "A person, as JSON"}}})},
              {"max_tokens", 400}};
    for (auto& [k, v] : extra.items()) b[k] = v;
    return b;
  }
  // Concatenated delta.content of an SSE body.
  static std::string streamed_content(const std::string& body) {
    std::string text;
    size_t pos = 0;
    while ((pos = body.find("data: ", pos)) != std::string::npos) {
      size_t end = body.find("\n\n", pos);
      std::string data = body.substr(pos + 6, end - pos - 6);
      pos = end;
      if (data == "[DONE]") break;
      json c = json::parse(data);
      if (c.contains("choices") && !c["choices"].empty() &&
          c["choices"][0]["delta"].contains("content"))
        text += c["choices"][0]["delta"]["content"].get<std::string>();
    }
    return text;
  }

  std::unique_ptr<EngineBackend> backend_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(JsonEngineTest, SchemaRepliesValidateStreamedOrNot) {
  const json schema = json::parse(R"({"type":"object","properties":{
      "name":{"type":"string","maxLength":10},"age":{"type":"integer"},
      "langs":{"type":"array","items":{"enum":["en","fr","ja"]},"minItems":1,"maxItems":2},
      "tz":{"type":["string","null"],"maxLength":6}},
    "required":["name","age","langs"],"additionalProperties":false})");
  const json format = {{"type", "json_schema"},
                       {"json_schema", {{"name", "person"}, {"schema", schema}, {"strict", true}}}};
  for (double temperature : {0.0, 1.0}) {
    json body = chat({{"response_format", format}, {"temperature", temperature}, {"seed", 3}});
    auto r = client_->Post("/v1/chat/completions", body.dump(), "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    json j = json::parse(r->body);
    EXPECT_EQ(j["choices"][0]["finish_reason"], "stop") << r->body;
    const std::string content = j["choices"][0]["message"]["content"];
    json v = json::parse(content, nullptr, false);
    ASSERT_FALSE(v.is_discarded()) << content;
    EXPECT_TRUE(ug::test::validate(v, schema, schema)) << content;
    body["stream"] = true;
    auto s = client_->Post("/v1/chat/completions", body.dump(), "application/json");
    ASSERT_TRUE(s);
    ASSERT_EQ(s->status, 200);
    EXPECT_EQ(streamed_content(s->body), content);
  }
}

// Greedy: with sampling (the default temperature 1, no seed) about one run in twenty closed the object within
// the 3 tokens (finish_reason "stop"): a flaky test.
TEST_F(JsonEngineTest, JsonObjectCutByMaxTokensIsLength) {
  json body = chat({{"response_format", {{"type", "json_object"}}}, {"max_tokens", 3}, {"temperature", 0}});
  auto r = client_->Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  const std::string content = j["choices"][0]["message"]["content"];
  auto grammar = JsonGrammar::any_object();
  JsonMatcher m(*grammar);  // holds a reference: keep the grammar alive
  EXPECT_FALSE(m.advance(m.initial(), content).empty()) << content;
}

}  // namespace
}  // namespace ug::server
