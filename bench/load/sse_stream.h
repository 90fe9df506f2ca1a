// Client side of one streamed chat completion (docs/server.md "Streaming"): splits the SSE bytes
// into events, parses each `data:` payload and records what a load test measures: when the first
// token arrived, when every later text chunk arrived (inter-token latency), the usage chunk's token
// counts, and whether the stream was well formed. Times are seconds since the request was sent,
// taken by the caller when the bytes arrived (events read together share one arrival time, as a
// client sees them).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ug::load {

struct StreamStats {
  bool done = false;          // saw `data: [DONE]`
  bool finished = false;      // saw a finish_reason
  std::string error;          // non-empty: an error event or a malformed stream (the first problem)
  double first_token_s = -1;  // arrival of the first chunk with a choice (the first token)
  std::vector<double> token_chunks_s;  // arrivals of the first chunk and of every chunk with text
  int64_t events = 0;                  // data events (chunks), [DONE] excluded
  int64_t prompt_tokens = -1, completion_tokens = -1, cached_tokens = 0;  // usage chunk (-1: none)
  std::string content;  // delta.content of choice 0, concatenated
};

class SseStream {
 public:
  // Bytes of the response body that arrived at `t`.
  void feed(std::string_view bytes, double t);
  // The body ended: a stream without [DONE], finish_reason, or (when asked for) usage is malformed.
  void finish(bool expect_usage);
  const StreamStats& stats() const { return st_; }

 private:
  void line(std::string_view l, double t);
  void event(const std::string& data, double t);
  void fail(std::string message);

  std::string pending_;  // bytes after the last newline
  std::string data_;     // data lines of the event being read
  bool has_data_ = false;
  StreamStats st_;
};

}  // namespace ug::load
