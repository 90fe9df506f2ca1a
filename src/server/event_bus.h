// One wake-up per scheduler step for every HTTP thread waiting on its request's events, instead of one per
// token: the scheduler's callbacks only queue events (SequenceGroup), and after the step the scheduler calls
// wake() (SchedulerOptions::after_callbacks), a single notify_all. Per-token notifications cost the scheduler
// thread a system call each, and on a small machine the woken thread took its CPU: 14 µs a token, 4.5% of a
// step at 64 streams on 2 cores (docs/perf.md).
#pragma once

#include <condition_variable>
#include <mutex>

namespace ug::server {

struct EventBus {
  std::mutex mutex;  // the waiters hold it while they check their queue (the predicate of cv)
  std::condition_variable cv;

  void wake() {
    { std::lock_guard lock(mutex); }  // a waiter between its check and its wait holds the mutex: no lost wake-up
    cv.notify_all();
  }
};

}  // namespace ug::server
