// Sends one chat completion request to a running `unigemma serve` (or any OpenAI-compatible server)
// and classifies the outcome for the load generator. One HttpDriver per client thread: it keeps its
// connection alive between requests and opens a new one after an error or a cancelled stream.
#pragma once

#include <httplib.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ug::load {

struct Target {
  std::string host = "127.0.0.1";
  int port = 9379;
  std::string api_key;             // sent as `Authorization: Bearer` when set
  double connect_timeout_s = 5;    // TCP connect
  double read_timeout_s = 60;      // longest silence while reading (the server sends keep-alives)
  double request_timeout_s = 600;  // whole request, from send to the last byte
};

struct RequestPlan {
  std::string body;                 // JSON of a streaming chat request (or deliberately bad input)
  int64_t cancel_after_chunks = 0;  // > 0: hang up after this many token chunks (client disconnect)
  bool expect_rejection = false;  // bad input on purpose: a 4xx with an OpenAI error is the success
};

enum class Outcome { Ok, Error, Cancelled, Rejected };

struct RequestResult {
  Outcome outcome = Outcome::Error;
  int status = 0;      // HTTP status (0: no response)
  std::string error;   // why it is an error
  double start_s = 0;  // when it was sent, seconds since the level began
  double ttft_s = -1, e2e_s = 0;
  std::vector<double> itl_s;  // gaps between consecutive token chunks
  int64_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
  std::string content;  // the reply text (multi-turn sessions send it back)
};

class HttpDriver {
 public:
  explicit HttpDriver(Target target);
  ~HttpDriver();
  RequestResult run(const RequestPlan& plan);

 private:
  void connect();
  Target target_;
  std::unique_ptr<httplib::Client> client_;
};

// GET `path` once; an empty string means it answered 200, else why not (for start-up checks).
std::string probe(const Target& target, const std::string& path, std::string* body = nullptr);

}  // namespace ug::load
