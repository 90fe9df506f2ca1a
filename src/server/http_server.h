// The OpenAI-compatible HTTP server: routes, API-key check, body limit, JSON errors for everything
// that goes wrong, and graceful shutdown. Endpoints and behaviour: docs/server.md.
#pragma once

#include <memory>

#include "server/backend.h"
#include "server/metrics.h"
#include "server/server_options.h"

namespace ug::server {

class HttpServer {
 public:
  HttpServer(Backend& backend, ServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds options.host:options.port (port 0: any free port) and returns the port. Throws ug::Error.
  int bind();
  // Serves until shutdown() has finished; blocks. Call bind() first.
  void serve();
  // Graceful shutdown, callable from any thread: new API requests get 503; requests in flight may
  // finish for up to grace_s seconds; the rest are cancelled (their clients get an error); then
  // serve() returns.
  void shutdown(double grace_s);

  Metrics& metrics();
  int64_t in_flight() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ug::server
