#include "runtime/step_worker.h"

#include <utility>

#include "core/error.h"
#include "core/thread_name.h"

namespace ug {

StepWorker::StepWorker(std::string thread_name) {
  thread_ = std::thread([this, name = std::move(thread_name)] { run(name); });
}

StepWorker::~StepWorker() {
  {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return !busy_; });
    quit_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void StepWorker::start(std::function<void()> job) {
  {
    std::lock_guard lk(mu_);
    UG_CHECK(!busy_, "step worker: a job is still running");
    job_ = std::move(job);
    error_ = nullptr;
    busy_ = true;
  }
  cv_.notify_all();
}

void StepWorker::wait() {
  std::exception_ptr error;
  {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return !busy_; });
    error = std::exchange(error_, nullptr);
  }
  if (error) std::rethrow_exception(error);
}

void StepWorker::run(const std::string& thread_name) {
  name_current_thread(thread_name.c_str());
  std::unique_lock lk(mu_);
  for (;;) {
    cv_.wait(lk, [&] { return quit_ || (busy_ && job_); });
    if (quit_) return;
    std::function<void()> job = std::move(job_);
    job_ = nullptr;
    lk.unlock();
    std::exception_ptr error;
    try {
      job();
    } catch (...) {
      error = std::current_exception();
    }
    lk.lock();
    error_ = error;
    busy_ = false;
    cv_.notify_all();
  }
}

}  // namespace ug
