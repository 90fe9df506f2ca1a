#include "server/http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "core/error.h"
#include "server/api_error.h"
#include "server/generation_handler.h"
#include "server/listen_backlog.h"
#include "server/openai_response.h"
#include "server/sse.h"

namespace ug::server {

using nlohmann::json;

struct HttpServer::Impl {
  Impl(Backend& b, ServerOptions o)
      : backend(b), options(std::move(o)), handler(b, metrics, options) {}
  Backend& backend;
  ServerOptions options;
  Metrics metrics;
  GenerationHandler handler;
  httplib::Server http;
  std::atomic<bool> draining{false};

  void setup();
  void send_error(httplib::Response& res, const ApiError& e) const;
  bool authorized(const httplib::Request& req) const;
};

namespace {

// Constant-time comparison (the API key must not leak through response timing).
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ b[i % (b.empty() ? 1 : b.size())]);
  return diff == 0 && !b.empty();
}

std::string endpoint_label(const std::string& path) {
  for (const char* known :
       {"/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics"})
    if (path.rfind(known, 0) == 0) return known;
  return "other";
}

}  // namespace

void HttpServer::Impl::send_error(httplib::Response& res, const ApiError& e) const {
  res.status = e.status;
  if (e.retry_after_s > 0) res.set_header("Retry-After", std::to_string(e.retry_after_s));
  res.set_content(dump_json(error_body(e)), "application/json");
}

bool HttpServer::Impl::authorized(const httplib::Request& req) const {
  if (options.api_key.empty()) return true;
  const std::string auth = req.get_header_value("Authorization");
  const std::string prefix = "Bearer ";
  return auth.rfind(prefix, 0) == 0 && same_secret(auth.substr(prefix.size()), options.api_key);
}

void HttpServer::Impl::setup() {
  http.new_task_queue = [n = options.http_threads] {
    return new httplib::ThreadPool(size_t(std::max(n, 2)));
  };
  http.set_payload_max_length(size_t(options.max_body_bytes));
  http.set_read_timeout(30, 0);
  http.set_write_timeout(30, 0);
  // Every SSE event is a small write: without TCP_NODELAY, Nagle holds it until the client ACKs the
  // previous one (delayed ACK, ~40 ms), which added ~40 ms to every streamed first token
  // (docs/perf.md "Server").
  http.set_tcp_nodelay(true);

  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
    if (!authorized(req)) {
      send_error(
          res, ApiError(401, "Invalid or missing API key (send \"Authorization: Bearer KEY\")", "",
                        "invalid_api_key"));
      return httplib::Server::HandlerResponse::Handled;
    }
    if (draining && req.path.rfind("/v1/", 0) == 0) {
      ApiError e(503, "The server is shutting down", "", "server_shutdown");
      send_error(res, e);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  // Every handler's exceptions become OpenAI error objects here.
  auto guarded = [this](
                     void (GenerationHandler::*fn)(const httplib::Request&, httplib::Response&)) {
    return [this, fn](const httplib::Request& req, httplib::Response& res) {
      try {
        (handler.*fn)(req, res);
      } catch (const ApiError& e) {
        send_error(res, e);
      } catch (const Error& e) {
        send_error(res, ApiError(400, e.what(), "", "invalid_request"));
      } catch (const std::bad_alloc&) {
        send_error(res, ApiError(503, "out of memory", "", "out_of_memory"));
      } catch (const std::exception& e) {
        send_error(res,
                   ApiError(500, std::string("internal error: ") + e.what(), "", "internal_error"));
      }
    };
  };
  http.Post("/v1/chat/completions", guarded(&GenerationHandler::chat));
  http.Post("/v1/completions", guarded(&GenerationHandler::completion));

  http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(dump_json(model_list_json(options.model_name, options.created)),
                    "application/json");
  });
  http.Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
    if (req.matches[1] != options.model_name)
      return send_error(
          res, ApiError(404, "The model '" + std::string(req.matches[1]) + "' does not exist",
                        "model", "model_not_found"));
    res.set_content(dump_json(model_json(options.model_name, options.created)), "application/json");
  });
  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    res.status = draining ? 503 : 200;
    res.set_content(draining ? R"({"status":"shutting_down"})" : R"({"status":"ok"})",
                    "application/json");
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics.render(backend.stats()), "text/plain; version=0.0.4");
  });

  // Errors httplib produces itself (unknown route, body too large, unparsable request) get a JSON
  // body too.
  http.set_error_handler(httplib::Server::HandlerWithResponse(
      [this](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        switch (res.status) {
          case 404:
            send_error(res, ApiError(404, "Unknown endpoint " + req.method + " " + req.path, "",
                                     "unknown_url"));
            break;
          case 413:
            send_error(res, ApiError(413,
                                     "The request body exceeds the server limit of " +
                                         std::to_string(options.max_body_bytes) + " bytes",
                                     "", "body_too_large"));
            break;
          case 499:
            break;  // client gone: nobody reads the answer
          default:
            send_error(res, ApiError(res.status, "HTTP error " + std::to_string(res.status)));
            break;
        }
        return httplib::Server::HandlerResponse::Handled;
      }));
  http.set_exception_handler(
      [this](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown exception";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        send_error(res, ApiError(500, "internal error: " + what, "", "internal_error"));
      });
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    metrics.request_done(endpoint_label(req.path), res.status);
  });
}

HttpServer::HttpServer(Backend& backend, ServerOptions options)
    : impl_(std::make_unique<Impl>(backend, std::move(options))) {
  impl_->setup();
}

HttpServer::~HttpServer() {
  if (impl_->http.is_running()) impl_->http.stop();
}

int HttpServer::bind() {
  const auto& o = impl_->options;
  int port = o.port;
  if (port == 0) {
    port = impl_->http.bind_to_any_port(o.host);
    UG_CHECK(port > 0, "serve: cannot bind {} (any port)", o.host);
  } else {
    UG_CHECK(impl_->http.bind_to_port(o.host, port),
             "serve: cannot bind {}:{} (in use, or not an address of this "
             "machine)",
             o.host, port);
  }
  if (!widen_listen_backlog(port, SOMAXCONN))  // httplib's backlog of 5 drops connection bursts
    std::fprintf(stderr, "warning: serve: could not raise the listen backlog of port %d\n", port);
  return port;
}

void HttpServer::serve() { impl_->http.listen_after_bind(); }

void HttpServer::shutdown(double grace_s) {
  impl_->draining = true;
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(grace_s);
  while (impl_->handler.in_flight() > 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  // Cancel what is left and give the streams a moment to send their error event.
  for (int i = 0; i < 250 && impl_->handler.in_flight() > 0; ++i) {
    impl_->handler.cancel_all();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  impl_->http.stop();
}

Metrics& HttpServer::metrics() { return impl_->metrics; }
int64_t HttpServer::in_flight() const { return impl_->handler.in_flight(); }

}  // namespace ug::server
