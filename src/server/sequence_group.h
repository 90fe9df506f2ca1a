// The sequences of one API request (n choices, or one per completion prompt): submits them,
// collects the scheduler's callbacks (called on the scheduler thread) into a queue the HTTP thread
// drains, and cancels whatever is still running when the request goes away (client disconnect,
// error, shutdown).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "runtime/scheduler.h"
#include "server/backend.h"

namespace ug::server {

struct SequenceEvent {
  size_t choice = 0;
  bool done = false;
  TokenEvent token;                          // when !done
  SequenceResult result;                     // when done
  std::chrono::steady_clock::time_point at;  // when the callback ran
};

class SequenceGroup {
 public:
  explicit SequenceGroup(Backend& backend)
      : backend_(backend), queue_(std::make_shared<Queue>()), bus_(backend.event_bus()) {}
  ~SequenceGroup();  // cancels unfinished sequences
  SequenceGroup(const SequenceGroup&) = delete;
  SequenceGroup& operator=(const SequenceGroup&) = delete;

  // Submits one sequence per element (choice i = element i). On QueueFull or another error, the
  // ones already submitted are cancelled and the exception propagates.
  void submit_all(std::vector<SequenceParams> params);
  // Waits up to `timeout` for events; returns those that arrived (possibly none).
  std::vector<SequenceEvent> wait(std::chrono::milliseconds timeout);
  bool all_done() const;
  // Thread-safe (a graceful shutdown calls it from another thread).
  void cancel_all();

 private:
  struct Queue {
    std::mutex mutex;
    std::condition_variable cv;
    std::deque<SequenceEvent> events;
  };
  Backend& backend_;
  std::shared_ptr<Queue> queue_;    // shared with the callbacks, which may outlive this object
  std::shared_ptr<EventBus> bus_;   // the backend's (then the scheduler wakes wait()), or nullptr
  mutable std::mutex state_mutex_;  // guards the three below
  std::vector<uint64_t> ids_;
  std::vector<bool> done_;
  size_t done_count_ = 0;
};

}  // namespace ug::server
