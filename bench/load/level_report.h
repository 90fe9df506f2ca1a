// Summary of one concurrency level of the load generator: counts by outcome, throughput, and the
// latency distributions (time to first token, inter-token latency, time per output token, end to
// end) as percentiles; printed as a table row and written as JSON.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "load/http_driver.h"

namespace ug::load {

struct Percentiles {
  double p50 = 0, p90 = 0, p99 = 0, mean = 0, max = 0;
  int64_t n = 0;
};

// Linear interpolation between closest ranks (numpy's default); all zero for no samples.
Percentiles percentiles(std::vector<double> v);

struct LevelSummary {
  int64_t concurrency = 0;
  int64_t ok = 0, errors = 0, cancelled = 0, rejected = 0;
  std::vector<std::string> error_samples;  // up to 3 distinct messages
  double wall_s = 0;                       // first request sent to last answer
  double requests_per_s = 0;               // ok requests / wall
  double output_tokens_per_s = 0;          // usage.completion_tokens of ok requests / wall
  double prompt_tokens_mean = 0, completion_tokens_mean = 0;
  double cached_fraction = 0;  // usage cached / prompt tokens over ok requests
  Percentiles ttft_s, itl_s, tpot_s, e2e_s;
  // Decode speed of one stream: (completion tokens - 1) / (e2e - ttft), median over ok requests.
  double stream_tokens_per_s = 0;
};

LevelSummary summarize(int64_t concurrency, const std::vector<RequestResult>& results,
                       double wall_s);

std::string table_header();
std::string table_row(const LevelSummary& s);
nlohmann::json to_json(const LevelSummary& s);

}  // namespace ug::load
