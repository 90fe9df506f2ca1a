// POST /v1/chat/completions and /v1/completions: parse and validate, build the prompt, submit the
// sequences and answer with one JSON object or an SSE stream. Requests in flight are tracked so
// that a graceful shutdown can wait for them and then cancel the rest; a client that disconnects
// has its sequences cancelled.
#pragma once

#include <httplib.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <set>

#include "server/backend.h"
#include "server/metrics.h"
#include "server/server_options.h"

namespace ug::server {

class SequenceGroup;
class ResponseAssembler;

class GenerationHandler {
 public:
  GenerationHandler(Backend& backend, Metrics& metrics, const ServerOptions& options)
      : backend_(backend), metrics_(metrics), options_(options) {}

  void chat(const httplib::Request& req, httplib::Response& res);
  void completion(const httplib::Request& req, httplib::Response& res);

  int64_t in_flight() const { return in_flight_.load(); }
  // Cancels every sequence of every request in flight (their clients get a 503 error).
  void cancel_all();

 private:
  struct Tracked;  // one request in flight (RAII registration)
  void check_model(const std::string& model) const;
  std::vector<SequenceParams> sequence_params(const GenerationOptions& gen,
                                              const PromptInput& prompt,
                                              std::chrono::steady_clock::time_point arrival) const;
  void respond(const httplib::Request& req, httplib::Response& res,
               std::shared_ptr<SequenceGroup> group, std::shared_ptr<ResponseAssembler> assembler,
               bool stream);
  void submit(SequenceGroup& group, std::vector<SequenceParams> params);

  Backend& backend_;
  Metrics& metrics_;
  const ServerOptions& options_;
  std::atomic<int64_t> in_flight_{0};
  std::mutex mutex_;
  std::set<SequenceGroup*> groups_;
};

}  // namespace ug::server
