// Prometheus metrics for GET /metrics (text exposition format 0.0.4): request counts by endpoint
// and status, token counters, latency histograms (time to first token, inter-token latency, queue
// time, end-to-end), and gauges read from the scheduler at scrape time (running, waiting = queue
// depth, KV use, prefix-cache hit rate). Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "runtime/scheduler.h"

namespace ug::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  // Appends the _bucket/_sum/_count lines of `name`.
  void render(std::string& out, const std::string& name, const std::string& help) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative); last = +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();
  void request_done(const std::string& endpoint, int status);
  void tokens(int64_t prompt, int64_t cached, int64_t completion);
  void time_to_first_token(double seconds);
  void inter_token_latency(double seconds);
  void queue_time(double seconds);
  void request_latency(double seconds);
  void stream_started();
  void stream_ended();

  std::string render(const SchedulerStats& s) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  int64_t prompt_tokens_ = 0, cached_tokens_ = 0, completion_tokens_ = 0, active_streams_ = 0;
  Histogram ttft_, itl_, queue_, e2e_;
};

}  // namespace ug::server
