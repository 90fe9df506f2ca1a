// Matmul kernel benchmarks. Decode (n = 1) is memory-bound: reported as GB/s of weights streamed
// and as a fraction of measure_read_bandwidth(). Prefill is compute-bound: reported as GFLOP/s.
// Threads: ThreadPool::global() (UNIGEMMA_THREADS or all cores).
//   build/<dir>/bench/matmul_bench [--benchmark_filter=Decode] [--benchmark_repetitions=3]
#include <benchmark/benchmark.h>
#include <emmintrin.h>
#include <fmt/format.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <tuple>
#include <utility>
#include <vector>

#include "backend/cpu/matmul.h"
#include "backend/cpu/memory_bandwidth.h"
#include "core/bf16.h"
#include "core/dtype.h"

namespace {

using ug::DType;
using ug::MatrixRef;
using ug::ThreadPool;
using ug::cpu::CpuIsa;

double g_read_bandwidth = 0;  // bytes/s, measured once in main()

struct OwnedMatrix {
  std::unique_ptr<void, decltype(&std::free)> mem{nullptr, &std::free};
  MatrixRef ref;
};

// Pseudo-random values in (-1, 1), written once so every page is really backed.
OwnedMatrix make_matrix(DType dtype, int64_t rows, int64_t cols, uint32_t seed) {
  size_t bytes = size_t(rows * cols) * ug::dtype_size(dtype);
  OwnedMatrix m;
  m.mem.reset(std::aligned_alloc(4096, (bytes + 4095) / 4096 * 4096));
  uint32_t s = seed * 2654435761u + 1;
  for (int64_t i = 0; i < rows * cols; ++i) {
    s = s * 1664525u + 1013904223u;
    float v = float(int32_t(s >> 8) - (1 << 23)) / float(1 << 23);
    if (dtype == DType::BF16) {
      static_cast<uint16_t*>(m.mem.get())[i] = ug::f32_to_bf16(v);
    } else {
      static_cast<float*>(m.mem.get())[i] = v;
    }
  }
  m.ref = MatrixRef{.data = m.mem.get(), .dtype = dtype, .rows = rows, .cols = cols};
  return m;
}

// Matrices are kept across benchmarks (ISA variants reuse them) and built only when needed.
const MatrixRef& cached_matrix(DType dtype, int64_t rows, int64_t cols, uint32_t seed) {
  static std::map<std::tuple<DType, int64_t, int64_t, uint32_t>, OwnedMatrix> cache;
  auto key = std::make_tuple(dtype, rows, cols, seed);
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, make_matrix(dtype, rows, cols, seed)).first;
  return it->second.ref;
}

struct IsaScope {
  explicit IsaScope(int64_t isa) { ug::cpu::set_isa_override(CpuIsa(isa)); }
  ~IsaScope() { ug::cpu::clear_isa_override(); }
};

// Runs the benchmark loop and returns its wall time (the counters below are per wall second; the
// library's own rate counters would print a misleading "/s" after a plain fraction).
template <class Fn>
double timed_loop(benchmark::State& state, Fn&& fn) {
  auto start = std::chrono::steady_clock::now();
  for (auto _ : state) fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void set_bandwidth_counters(benchmark::State& state, double bytes_per_iter, double seconds) {
  double rate = bytes_per_iter * double(state.iterations()) / seconds;
  state.counters["GB/s"] = rate / 1e9;
  state.counters["bw_frac"] = rate / g_read_bandwidth;
}

// Args: rows, cols, dtype (0 = bf16, 1 = f32), isa (0 scalar, 1 avx2, 2 avx512).
void BM_Decode(benchmark::State& state) {
  DType dtype = state.range(2) == 0 ? DType::BF16 : DType::F32;
  const MatrixRef& w = cached_matrix(dtype, state.range(0), state.range(1), 1);
  IsaScope isa(state.range(3));
  std::vector<float> x(size_t(w.cols), 0.5f), y(size_t(w.rows));
  double seconds = timed_loop(state, [&] {
    ug::cpu::matmul(x.data(), 1, w, y.data(), ThreadPool::global());
    benchmark::DoNotOptimize(y.data());
  });
  set_bandwidth_counters(state, double(w.rows * w.cols) * double(ug::dtype_size(dtype)), seconds);
}

// n = 1 over the MLP weights of 3 Gemma-4-12B-sized layers (gate, up [15360, 3840] and
// down [3840, 15360], bf16): 1.06 GB per pass, so nothing is reused from any cache.
void BM_DecodeLayers(benchmark::State& state) {
  std::vector<MatrixRef> ws;
  for (uint32_t layer = 0; layer < 3; ++layer) {
    ws.push_back(cached_matrix(DType::BF16, 15360, 3840, 10 + 3 * layer));
    ws.push_back(cached_matrix(DType::BF16, 15360, 3840, 11 + 3 * layer));
    ws.push_back(cached_matrix(DType::BF16, 3840, 15360, 12 + 3 * layer));
  }
  IsaScope isa(state.range(0));
  std::vector<float> x(15360, 0.5f), y(15360);
  double bytes = 0;
  for (const MatrixRef& w : ws) bytes += double(w.rows * w.cols * 2);
  double seconds = timed_loop(state, [&] {
    for (const MatrixRef& w : ws) ug::cpu::matmul(x.data(), 1, w, y.data(), ThreadPool::global());
    benchmark::DoNotOptimize(y.data());
  });
  set_bandwidth_counters(state, bytes, seconds);
}

// Args: n tokens, rows, cols, isa; bf16 weights.
void BM_Prefill(benchmark::State& state) {
  const int64_t n = state.range(0);
  const MatrixRef& w = cached_matrix(DType::BF16, state.range(1), state.range(2), 1);
  IsaScope isa(state.range(3));
  std::vector<float> x(size_t(n * w.cols), 0.25f), y(size_t(n * w.rows));
  double seconds = timed_loop(state, [&] {
    ug::cpu::matmul(x.data(), n, w, y.data(), ThreadPool::global());
    benchmark::DoNotOptimize(y.data());
  });
  double flops = 2.0 * double(n) * double(w.rows) * double(w.cols) * double(state.iterations());
  state.counters["GFLOP/s"] = flops / seconds / 1e9;
}

double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// Sequential read of [p, p + bytes) with 16-byte loads; returns a sum so it can't be elided.
uint64_t read_all(const uint8_t* p, size_t bytes) {
  __m128i a = _mm_setzero_si128(), b = a, c = a, d = a;
  for (size_t i = 0; i + 64 <= bytes; i += 64) {
    const auto* q = reinterpret_cast<const __m128i*>(p + i);
    a = _mm_add_epi64(a, _mm_load_si128(q));
    b = _mm_add_epi64(b, _mm_load_si128(q + 1));
    c = _mm_add_epi64(c, _mm_load_si128(q + 2));
    d = _mm_add_epi64(d, _mm_load_si128(q + 3));
  }
  return uint64_t(_mm_cvtsi128_si64(_mm_add_epi64(_mm_add_epi64(a, b), _mm_add_epi64(c, d))));
}

// Load-robust view of the same ratio: ONE thread, timed in that thread's CPU time, alternating a
// decode of the [15360, 3840] bf16 weight with a plain read of an equally large buffer. Other
// processes on the machine stretch wall time but hardly CPU time, so on a busy machine this is the
// number to trust (best of all iterations for both; counters: GB/s of each and their ratio).
void BM_DecodeVsRead1T(benchmark::State& state) {
  const MatrixRef& w = cached_matrix(DType::BF16, 15360, 3840, 1);
  IsaScope isa(state.range(0));
  ThreadPool one(1);
  const size_t bytes = size_t(w.rows * w.cols) * 2;
  std::unique_ptr<void, decltype(&std::free)> buf(std::aligned_alloc(4096, bytes), &std::free);
  std::memset(buf.get(), 1, bytes);
  std::vector<float> x(size_t(w.cols), 0.5f), y(size_t(w.rows));
  double best_decode = 1e30, best_read = 1e30;
  for (auto _ : state) {
    double t0 = thread_cpu_seconds();
    ug::cpu::matmul(x.data(), 1, w, y.data(), one);
    double t1 = thread_cpu_seconds();
    benchmark::DoNotOptimize(read_all(static_cast<const uint8_t*>(buf.get()), bytes));
    double t2 = thread_cpu_seconds();
    best_decode = std::min(best_decode, t1 - t0);
    best_read = std::min(best_read, t2 - t1);
  }
  state.counters["decode_GB/s"] = double(bytes) / best_decode / 1e9;
  state.counters["read_GB/s"] = double(bytes) / best_read / 1e9;
  state.counters["bw_frac"] = best_read / best_decode;
}

constexpr int64_t kAvx2 = int64_t(CpuIsa::Avx2), kAvx512 = int64_t(CpuIsa::Avx512);

BENCHMARK(BM_Decode)
    ->ArgNames({"rows", "cols", "f32", "isa"})
    ->Args({15360, 3840, 0, kAvx512})
    ->Args({15360, 3840, 0, kAvx2})
    ->Args({15360, 3840, 1, kAvx512})
    ->Args({3840, 15360, 0, kAvx512})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DecodeLayers)
    ->ArgNames({"isa"})
    ->Arg(kAvx512)
    ->Arg(kAvx2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DecodeVsRead1T)
    ->ArgNames({"isa"})
    ->Arg(kAvx512)
    ->Arg(kAvx2)
    ->Iterations(40)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Prefill)
    ->ArgNames({"n", "rows", "cols", "isa"})
    ->Args({64, 15360, 3840, kAvx512})
    ->Args({256, 15360, 3840, kAvx512})
    ->Args({256, 3840, 15360, kAvx512})
    ->Args({64, 15360, 3840, kAvx2})
    ->Args({256, 15360, 3840, kAvx2})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  ThreadPool& pool = ThreadPool::global();
  g_read_bandwidth = ug::cpu::measure_read_bandwidth(pool);
  benchmark::AddCustomContext("threads", fmt::format("{}", pool.size()));
  benchmark::AddCustomContext("read_bandwidth_GBps", fmt::format("{:.2f}", g_read_bandwidth / 1e9));
  benchmark::AddCustomContext("detected_isa",
                              std::string(ug::cpu::isa_name(ug::cpu::detected_isa())));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
