#include "core/thread_pool.h"

#include <algorithm>
#include <cstdlib>

#include "core/thread_name.h"

namespace ug {
namespace {
thread_local const ThreadPool* t_running_in = nullptr;  // the pool whose task this thread is running

struct RunningIn {
  const ThreadPool* saved;
  explicit RunningIn(const ThreadPool* p) : saved(t_running_in) { t_running_in = p; }
  ~RunningIn() { t_running_in = saved; }
};
}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = int(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_start_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::work_on_current() {
  // Called with mu_ held; releases it while running tasks.
  std::unique_lock lock(mu_, std::adopt_lock);
  while (next_task_ < n_tasks_) {
    int64_t i = next_task_++;
    const auto* job = job_;
    lock.unlock();
    {
      RunningIn guard(this);
      (*job)(i);
    }
    lock.lock();
    if (++done_tasks_ == n_tasks_) cv_done_.notify_all();
  }
  lock.release();
}

void ThreadPool::worker_loop() {
  name_current_thread("ug-pool");
  uint64_t seen = 0;
  std::unique_lock lock(mu_);
  for (;;) {
    cv_start_.wait(lock, [&] { return stop_ || generation_ != seen; });
    if (stop_) return;
    seen = generation_;
    lock.release();  // mu_ stays locked; work_on_current adopts it
    work_on_current();
    lock = std::unique_lock(mu_, std::adopt_lock);
  }
}

void ThreadPool::run(int64_t n_tasks, const std::function<void(int64_t)>& fn) {
  if (n_tasks <= 0) return;
  if (workers_.empty() || n_tasks == 1 || t_running_in == this) {
    for (int64_t i = 0; i < n_tasks; ++i) fn(i);
    return;
  }
  std::lock_guard one_job(run_mu_);
  std::unique_lock lock(mu_);
  job_ = &fn;
  n_tasks_ = n_tasks;
  next_task_ = 0;
  done_tasks_ = 0;
  ++generation_;
  cv_start_.notify_all();
  lock.release();  // mu_ stays locked; work_on_current adopts it
  work_on_current();
  lock = std::unique_lock(mu_, std::adopt_lock);
  cv_done_.wait(lock, [&] { return done_tasks_ == n_tasks_; });
  job_ = nullptr;
  n_tasks_ = 0;
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  int64_t max_chunks = (n + grain - 1) / grain;
  int64_t chunks = std::min<int64_t>(max_chunks, int64_t(size()) * 4);
  int64_t per = (n + chunks - 1) / chunks;
  run(chunks, [&](int64_t c) {
    int64_t b = c * per, e = std::min(n, b + per);
    if (b < e) fn(b, e);
  });
}

ThreadPool& ThreadPool::global() {
  static ThreadPool pool([] {
    const char* env = std::getenv("UNIGEMMA_THREADS");
    return env ? std::atoi(env) : 0;
  }());
  return pool;
}

}  // namespace ug
