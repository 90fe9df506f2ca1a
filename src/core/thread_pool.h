// A fixed pool of worker threads for data-parallel loops (the calling thread takes part).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ug {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads = 0);  // 0 = hardware concurrency
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return int(workers_.size()) + 1; }

  // Calls fn(task_index) for task_index in [0, n_tasks); returns when all are done.
  // Tasks are claimed dynamically, so uneven tasks balance themselves. Safe to call from several threads
  // (jobs run one after another: the server embeds media while the scheduler decodes); a call from inside
  // a task runs inline on the calling thread.
  void run(int64_t n_tasks, const std::function<void(int64_t)>& fn);

  // Splits [0, n) into contiguous ranges of at least `grain` items: fn(begin, end).
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  static ThreadPool& global();  // sized by UNIGEMMA_THREADS or the core count

 private:
  void worker_loop();
  void work_on_current();

  std::vector<std::thread> workers_;
  std::mutex run_mu_;  // one job at a time
  std::mutex mu_;
  std::condition_variable cv_start_, cv_done_;
  const std::function<void(int64_t)>* job_ = nullptr;
  int64_t n_tasks_ = 0;
  int64_t next_task_ = 0;
  int64_t done_tasks_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

}  // namespace ug
