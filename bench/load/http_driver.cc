#include "load/http_driver.h"

#include <fmt/format.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "load/sse_stream.h"

namespace ug::load {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::unique_ptr<httplib::Client> make_client(const Target& t) {
  auto c = std::make_unique<httplib::Client>(t.host, t.port);
  auto split = [](double s, auto&& set) {
    const auto us = int64_t(s * 1e6);
    set(time_t(us / 1000000), time_t(us % 1000000));
  };
  split(t.connect_timeout_s, [&](time_t s, time_t us) { c->set_connection_timeout(s, us); });
  split(t.read_timeout_s, [&](time_t s, time_t us) { c->set_read_timeout(s, us); });
  split(t.read_timeout_s, [&](time_t s, time_t us) { c->set_write_timeout(s, us); });
  c->set_keep_alive(true);
  c->set_tcp_nodelay(true);  // no Nagle delay between the request headers and body
  if (!t.api_key.empty()) c->set_bearer_token_auth(t.api_key);
  return c;
}

// The message of an OpenAI error body, or the start of the body.
std::string error_message(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("error") && j["error"].is_object() &&
      j["error"].value("message", nlohmann::json()).is_string())
    return j["error"]["message"].get<std::string>();
  return fmt::format("{:.200}", body);
}

bool is_openai_error(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  return !j.is_discarded() && j.is_object() && j.contains("error") && j["error"].is_object();
}

}  // namespace

HttpDriver::HttpDriver(Target target) : target_(std::move(target)) { connect(); }
HttpDriver::~HttpDriver() = default;

void HttpDriver::connect() { client_ = make_client(target_); }

RequestResult HttpDriver::run(const RequestPlan& plan) {
  RequestResult r;
  SseStream sse;
  std::string other_body;  // the body of a non-200 answer
  int64_t token_chunks = 0;
  bool cancelled = false, timed_out = false;
  const auto t0 = Clock::now();

  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.headers.emplace("Content-Type", "application/json");
  req.headers.emplace("Accept", "text/event-stream");
  req.body = plan.body;
  req.response_handler = [&](const httplib::Response& res) {
    r.status = res.status;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    const double t = since(t0);
    if (r.status != 200) {
      if (other_body.size() < 65536) other_body.append(data, n);
      return true;
    }
    sse.feed(std::string_view(data, n), t);
    token_chunks = int64_t(sse.stats().token_chunks_s.size());
    if (plan.cancel_after_chunks > 0 && token_chunks >= plan.cancel_after_chunks) {
      cancelled = true;
      return false;  // hang up mid-stream
    }
    if (t > target_.request_timeout_s) {
      timed_out = true;
      return false;
    }
    return true;
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  const bool sent = client_->send(req, res, err);
  r.e2e_s = since(t0);

  const StreamStats& st = sse.stats();
  r.ttft_s = st.first_token_s;
  for (size_t i = 1; i < st.token_chunks_s.size(); ++i)
    r.itl_s.push_back(st.token_chunks_s[i] - st.token_chunks_s[i - 1]);
  r.content = st.content;

  if (plan.expect_rejection) {
    const bool ok = r.status >= 400 && r.status < 500 && is_openai_error(other_body);
    r.outcome = ok ? Outcome::Rejected : Outcome::Error;
    if (!ok)
      r.error = fmt::format("bad input answered with HTTP {} (expected 4xx + error JSON): {:.200}",
                            r.status, other_body.empty() ? httplib::to_string(err) : other_body);
  } else if (cancelled) {
    r.outcome = st.error.empty() ? Outcome::Cancelled : Outcome::Error;
    r.error = st.error;
  } else if (timed_out) {
    r.error = fmt::format("request timed out after {:.0f} s", target_.request_timeout_s);
  } else if (!sent && r.status == 0) {
    r.error = fmt::format("no response after {:.1f} s: {} error", r.e2e_s, httplib::to_string(err));
  } else if (r.status != 200) {
    r.error = fmt::format("HTTP {}: {}", r.status, error_message(other_body));
  } else if (!sent) {
    r.error =
        fmt::format("stream broken after {:.1f} s: {} error", r.e2e_s, httplib::to_string(err));
  } else {
    sse.finish(/*expect_usage=*/true);
    if (!st.error.empty()) {
      r.error = st.error;
    } else {
      r.outcome = Outcome::Ok;
      r.prompt_tokens = st.prompt_tokens;
      r.completion_tokens = st.completion_tokens;
      r.cached_tokens = st.cached_tokens;
    }
  }
  if (!sent || r.outcome != Outcome::Ok) connect();  // never reuse a connection in doubt
  return r;
}

std::string probe(const Target& target, const std::string& path, std::string* body) {
  auto c = make_client(target);
  auto res = c->Get(path);
  if (!res)
    return fmt::format("cannot reach http://{}:{}{}: {} error", target.host, target.port, path,
                       httplib::to_string(res.error()));
  if (body) *body = res->body;
  if (res->status != 200)
    return fmt::format("http://{}:{}{} answered HTTP {}: {}", target.host, target.port, path,
                       res->status, error_message(res->body));
  return {};
}

}  // namespace ug::load
