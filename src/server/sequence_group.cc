#include "server/sequence_group.h"

namespace ug::server {

SequenceGroup::~SequenceGroup() { cancel_all(); }

void SequenceGroup::submit_all(std::vector<SequenceParams> params) {
  try {
    for (size_t i = 0; i < params.size(); ++i) {
      std::shared_ptr<Queue> q = queue_;
      SequenceCallbacks cb;
      // The scheduler thread runs these once per token of every stream: the event is built before the lock, and
      // with a bus the waiter is woken once per step by the scheduler (event_bus.h), else after the lock (woken
      // under it, it would block on the mutex right away).
      const bool wake = bus_ == nullptr;
      const auto push = [q, wake](SequenceEvent e) {
        {
          std::lock_guard lock(q->mutex);
          q->events.push_back(std::move(e));
        }
        if (wake) q->cv.notify_one();
      };
      cb.on_token = [push, i](const TokenEvent& ev) {
        push({.choice = i, .done = false, .token = ev, .at = std::chrono::steady_clock::now()});
      };
      cb.on_done = [push, i](const SequenceResult& r) {
        push({.choice = i, .done = true, .result = r, .at = std::chrono::steady_clock::now()});
      };
      uint64_t id = backend_.submit(std::move(params[i]), std::move(cb));
      std::lock_guard lock(state_mutex_);
      ids_.push_back(id);
      done_.push_back(false);
    }
  } catch (...) {
    cancel_all();
    throw;
  }
}

std::vector<SequenceEvent> SequenceGroup::wait(std::chrono::milliseconds timeout) {
  std::vector<SequenceEvent> out;
  if (bus_) {  // lock order: the bus's mutex, then the queue's (the callbacks take only the queue's)
    std::unique_lock bus_lock(bus_->mutex);
    bus_->cv.wait_for(bus_lock, timeout, [&] {
      std::lock_guard lock(queue_->mutex);
      return !queue_->events.empty();
    });
  }
  {
    std::unique_lock lock(queue_->mutex);
    if (!bus_) queue_->cv.wait_for(lock, timeout, [&] { return !queue_->events.empty(); });
    out.assign(std::make_move_iterator(queue_->events.begin()), std::make_move_iterator(queue_->events.end()));
    queue_->events.clear();
  }
  std::lock_guard lock(state_mutex_);
  for (const auto& e : out)
    if (e.done && e.choice < done_.size() && !done_[e.choice]) {
      done_[e.choice] = true;
      ++done_count_;
    }
  return out;
}

bool SequenceGroup::all_done() const {
  std::lock_guard lock(state_mutex_);
  return done_count_ == ids_.size();
}

void SequenceGroup::cancel_all() {
  std::lock_guard lock(state_mutex_);
  for (size_t i = 0; i < ids_.size(); ++i)
    if (!done_[i]) backend_.cancel(ids_[i]);
}

}  // namespace ug::server
