// One job at a time on a thread of its own. The scheduler runs each forward pass here so that its own thread can
// stream the previous step's tokens (detokenizing, stop strings, the callbacks and their wake-ups) while the
// accelerator computes the next step, instead of leaving the accelerator idle during that host work.
#pragma once

#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace ug {

class StepWorker {
 public:
  explicit StepWorker(std::string thread_name);
  ~StepWorker();  // waits for a running job, then ends the thread
  StepWorker(const StepWorker&) = delete;
  StepWorker& operator=(const StepWorker&) = delete;

  // Starts `job` on the worker thread. At most one job at a time: wait() for the previous one first.
  void start(std::function<void()> job);
  // Blocks until the started job has returned; rethrows what it threw. Returns at once when none was started.
  void wait();

 private:
  void run(const std::string& thread_name);

  std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> job_;
  bool busy_ = false, quit_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace ug
