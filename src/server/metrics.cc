#include "server/metrics.h"

#include <fmt/format.h>

namespace ug::server {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& help) const {
  out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], cumulative);
  }
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, count_, name,
                     sum_, name, count_);
}

Metrics::Metrics()
    : ttft_({0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}),
      itl_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}),
      queue_({0.001, 0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60}),
      e2e_({0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}) {}

void Metrics::request_done(const std::string& endpoint, int status) {
  std::lock_guard lock(mutex_);
  ++requests_[{endpoint, status}];
}

void Metrics::tokens(int64_t prompt, int64_t cached, int64_t completion) {
  std::lock_guard lock(mutex_);
  prompt_tokens_ += prompt;
  cached_tokens_ += cached;
  completion_tokens_ += completion;
}

void Metrics::time_to_first_token(double s) {
  std::lock_guard lock(mutex_);
  ttft_.observe(s);
}
void Metrics::inter_token_latency(double s) {
  std::lock_guard lock(mutex_);
  itl_.observe(s);
}
void Metrics::queue_time(double s) {
  std::lock_guard lock(mutex_);
  queue_.observe(s);
}
void Metrics::request_latency(double s) {
  std::lock_guard lock(mutex_);
  e2e_.observe(s);
}
void Metrics::stream_started() {
  std::lock_guard lock(mutex_);
  ++active_streams_;
}
void Metrics::stream_ended() {
  std::lock_guard lock(mutex_);
  --active_streams_;
}

std::string Metrics::render(const SchedulerStats& s) const {
  std::lock_guard lock(mutex_);
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help, auto value) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
  };
  out +=
      "# HELP unigemma_requests_total HTTP API requests by endpoint and status code.\n"
      "# TYPE unigemma_requests_total counter\n";
  for (const auto& [key, n] : requests_)
    out += fmt::format("unigemma_requests_total{{endpoint=\"{}\",status=\"{}\"}} {}\n", key.first,
                       key.second, n);
  metric("unigemma_prompt_tokens_total", "counter", "Prompt tokens of finished requests.",
         prompt_tokens_);
  metric("unigemma_prompt_tokens_cached_total", "counter",
         "Prompt tokens served from the prefix cache.", cached_tokens_);
  metric("unigemma_generation_tokens_total", "counter", "Generated tokens of finished requests.",
         completion_tokens_);
  metric("unigemma_active_streams", "gauge", "Streaming responses in progress.", active_streams_);
  metric("unigemma_sequences_running", "gauge", "Sequences being generated.", s.running);
  metric("unigemma_queue_depth", "gauge", "Sequences waiting to be scheduled.", s.waiting);
  metric("unigemma_kv_cache_used_bytes", "gauge",
         "KV cache memory in use (live sequences + prefix cache).", s.kv_bytes_used);
  metric("unigemma_kv_cache_sequences_bytes", "gauge",
         "KV cache memory held by live sequences (0 when idle).", s.kv_bytes_sequences);
  metric("unigemma_prefix_cache_bytes", "gauge", "KV cache memory held by the prefix cache.",
         s.kv_bytes_prefix_cache);
  metric("unigemma_kv_cache_budget_bytes", "gauge", "KV cache memory budget.", s.kv_bytes_budget);
  metric("unigemma_kv_cache_usage_ratio", "gauge", "KV cache use as a fraction of the budget.",
         s.kv_bytes_budget > 0 ? double(s.kv_bytes_used) / double(s.kv_bytes_budget) : 0.0);
  metric("unigemma_prefix_cache_entries", "gauge", "Blocks held by the prefix cache.",
         s.prefix_cache_entries);
  metric("unigemma_prefix_cache_hit_rate", "gauge",
         "Fraction of prompt tokens served from the prefix cache.",
         s.prompt_tokens_total > 0 ? double(s.prompt_tokens_cached) / double(s.prompt_tokens_total)
                                   : 0.0);
  metric("unigemma_scheduler_steps_total", "counter", "Batched decoder steps run.", s.steps);
  metric("unigemma_scheduler_step_seconds_total", "counter",
         "Wall time of scheduler iterations that ran a step (forward pass and host work).",
         s.step_seconds);
  metric("unigemma_scheduler_forward_seconds_total", "counter",
         "Part of the step time inside the forward pass (the rest: host work between passes).",
         s.forward_seconds);
  out +=
      "# HELP unigemma_scheduler_host_seconds_total Host work of the scheduler's steps by phase (admit: "
      "ending and admitting sequences; batch: building the step; sample: choosing the tokens; stream: "
      "detokenizer, stop strings, callbacks).\n"
      "# TYPE unigemma_scheduler_host_seconds_total counter\n";
  for (const auto& [phase, value] :
       {std::pair{"admit", s.admit_seconds}, std::pair{"batch", s.batch_seconds},
        std::pair{"sample", s.sample_seconds}, std::pair{"stream", s.stream_seconds}})
    out += fmt::format("unigemma_scheduler_host_seconds_total{{phase=\"{}\"}} {}\n", phase, value);
  ttft_.render(out, "unigemma_time_to_first_token_seconds",
               "Time from request arrival to the first token.");
  itl_.render(out, "unigemma_inter_token_latency_seconds",
              "Time between consecutive tokens of a sequence.");
  queue_.render(out, "unigemma_queue_time_seconds",
                "Time a sequence waited before it was scheduled.");
  e2e_.render(out, "unigemma_request_duration_seconds",
              "Time from request arrival to the last token.");
  return out;
}

}  // namespace ug::server
