// What the load generator sends: streaming chat requests (temperature 0 unless told, usage requested) with
// prompts of random common words, optionally after a system prompt shared by every client
// (prefix-cache traffic) and as multi-turn conversations that re-send their history with each turn
// (agent-like); for soak runs, a fraction of requests is hung up mid-stream or sent as deliberately
// bad input.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "load/http_driver.h"

namespace ug::load {

struct WorkloadOptions {
  std::string model = "gemma-4-12b-it";
  int64_t prompt_words = 64;   // words of each user message
  int64_t prefix_words = 0;    // words of the system prompt every request shares (0: none)
  int64_t turns = 1;           // turns per conversation (> 1: history re-sent each turn)
  int64_t max_tokens = 64;     // completion tokens per request
  double temperature = 0;      // > 0: sampled with the server's default top-k / top-p (seeded per request)
  double cancel_fraction = 0;  // requests hung up after a random number of token chunks
  double bad_fraction = 0;     // requests with invalid input (must be rejected with a 4xx)
  uint64_t seed = 1;           // of the prompt words (the shared prefix depends only on it)
};

// `n` random words from a fixed list of common English words (about one token each).
std::string random_words(std::mt19937_64& rng, int64_t n);

// The body of one streaming chat request (usage requested) for `messages`.
std::string chat_body(const WorkloadOptions& o, const nlohmann::json& messages, int64_t max_tokens);

// One client's stream of requests. Not thread-safe: one per client thread.
class Workload {
 public:
  Workload(const WorkloadOptions& options, uint64_t client_id);
  RequestPlan next();
  // The result of the request next() returned (a conversation continues with the reply).
  void done(const RequestResult& r);

 private:
  RequestPlan bad_request();
  void new_conversation();

  const WorkloadOptions& o_;
  std::mt19937_64 rng_;
  nlohmann::json messages_;
  int64_t turn_ = 0;
  bool last_was_conversation_ = false;
};

}  // namespace ug::load
