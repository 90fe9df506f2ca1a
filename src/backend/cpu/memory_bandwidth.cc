// Baseline x86-64 (SSE2) on purpose: 16-byte loads already saturate DRAM from one core, so the
// probe needs no dispatch (on the Zen 5 dev box, one thread: SSE2 28.9 GB/s, AVX-512 loads 23.4
// GB/s).
#include "backend/cpu/memory_bandwidth.h"

#include <emmintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "core/error.h"

namespace ug::cpu {
namespace {

constexpr size_t kLine = 64;
constexpr int kRepetitions = 5;
constexpr int64_t kChunksPerThread = 16;  // dynamic claiming evens out a slow thread

// Reads [p, p + bytes) (a multiple of 256) with four independent accumulators.
uint64_t read_range(const uint8_t* p, size_t bytes) {
  __m128i a = _mm_setzero_si128(), b = a, c = a, d = a;
  for (size_t i = 0; i < bytes; i += 4 * kLine) {
    for (size_t l = 0; l < 4 * kLine; l += kLine) {
      const auto* q = reinterpret_cast<const __m128i*>(p + i + l);
      a = _mm_add_epi64(a, _mm_load_si128(q));
      b = _mm_add_epi64(b, _mm_load_si128(q + 1));
      c = _mm_add_epi64(c, _mm_load_si128(q + 2));
      d = _mm_add_epi64(d, _mm_load_si128(q + 3));
    }
  }
  __m128i s = _mm_add_epi64(_mm_add_epi64(a, b), _mm_add_epi64(c, d));
  uint64_t out[2];
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), s);
  return out[0] + out[1];
}

}  // namespace

double measure_read_bandwidth(ThreadPool& pool, size_t bytes) {
  UG_CHECK(bytes >= (size_t(16) << 20),
           "measure_read_bandwidth: buffer of {} bytes is too small to leave the cache (need at "
           "least 16 MiB)",
           bytes);
  const int64_t chunks = int64_t(pool.size()) * kChunksPerThread;
  const size_t chunk = bytes / size_t(chunks) / (4 * kLine) * (4 * kLine);
  const size_t total = chunk * size_t(chunks);
  std::unique_ptr<uint8_t, decltype(&std::free)> buf(
      static_cast<uint8_t*>(std::aligned_alloc(4096, (total + 4095) / 4096 * 4096)), &std::free);
  UG_CHECK(buf != nullptr, "measure_read_bandwidth: could not allocate {} bytes", total);
  // Touch every page from the threads that will read it (first-touch placement), non-zero so no
  // page can be the shared zero page.
  pool.run(chunks, [&](int64_t i) { std::memset(buf.get() + size_t(i) * chunk, 1, chunk); });

  std::vector<uint64_t> sink(size_t(chunks) * 8);  // 8 apart: one cache line per chunk
  double best = 0;
  for (int rep = 0; rep < kRepetitions; ++rep) {
    auto start = std::chrono::steady_clock::now();
    pool.run(chunks, [&](int64_t i) {
      sink[size_t(i) * 8] = read_range(buf.get() + size_t(i) * chunk, chunk);
    });
    std::chrono::duration<double> dt = std::chrono::steady_clock::now() - start;
    best = std::max(best, double(total) / dt.count());
  }
  uint64_t check = 0;
  for (uint64_t v : sink) check += v;
  // The sums are real data dependencies; this keeps the reads from being optimised away.
  std::atomic_signal_fence(std::memory_order_seq_cst);
  if (check == 0x0123456789abcdefull) best += 1e-9;
  return best;
}

}  // namespace ug::cpu
