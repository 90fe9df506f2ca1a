#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace ug {
namespace {

TEST(ThreadPool, EveryTaskRunsOnce) {
  ThreadPool pool(3);
  std::vector<std::atomic<int>> hits(1000);
  pool.run(1000, [&](int64_t i) { hits[size_t(i)]++; });
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
}

// The server embeds media on request threads while the scheduler thread decodes: both use one pool.
TEST(ThreadPool, ConcurrentCallersEachGetAllTheirTasks) {
  ThreadPool pool(3);
  auto caller = [&](std::atomic<int64_t>& sum) {
    for (int rep = 0; rep < 200; ++rep) pool.run(37, [&](int64_t i) { sum += i + 1; });
  };
  std::atomic<int64_t> a{0}, b{0};
  std::thread t1(caller, std::ref(a)), t2(caller, std::ref(b));
  t1.join();
  t2.join();
  EXPECT_EQ(a.load(), 200 * 37 * 38 / 2);
  EXPECT_EQ(b.load(), 200 * 37 * 38 / 2);
}

TEST(ThreadPool, NestedRunIsInline) {
  ThreadPool pool(2);
  std::atomic<int> inner{0};
  pool.run(4, [&](int64_t) { pool.run(5, [&](int64_t) { inner++; }); });
  EXPECT_EQ(inner.load(), 20);
}

}  // namespace
}  // namespace ug
