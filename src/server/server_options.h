// Settings of `unigemma serve` that the HTTP layer uses (tools/cmd_serve.cc fills them from flags).
#pragma once

#include <cstdint>
#include <string>

#include "server/request.h"

namespace ug::server {

struct ServerOptions {
  std::string host = "127.0.0.1";  // loopback only unless told otherwise
  int port = 9379;                 // 0 = any free port (tests)
  std::string api_key;  // non-empty: every route but /health needs "Authorization: Bearer KEY"
  std::string model_name =
      "gemma-4-12b-it";  // the only model id accepted in requests and listed by /v1/models
  int64_t created = 0;   // /v1/models "created" (unix seconds)
  int64_t max_body_bytes = int64_t(64) << 20;
  int64_t max_tokens_cap = 0;  // most completion tokens one sequence may ask for (0 = the context)
  // Completion tokens of a chat request that does not say (each sequence reserves KV for its prompt
  // plus this many tokens, so "the whole context" would make every request reserve the whole
  // context).
  int64_t default_max_tokens = 4096;
  double timeout_s = 600;  // per request, from arrival to the last token (0 = none)
  int http_threads = 128;  // connections served at once (each stream holds one)
  double keepalive_s = 2;  // SSE keep-alive comment after this long without output
  RequestLimits limits;
};

}  // namespace ug::server
