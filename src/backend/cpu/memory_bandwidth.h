// The machine's memory-read ceiling, so benchmarks can print achieved bandwidth as a fraction.
#pragma once

#include <cstddef>

#include "core/thread_pool.h"

namespace ug::cpu {

// Sustained read bandwidth (bytes/s) of main memory using all of the pool's threads: a buffer of
// `bytes` (≫ last-level cache) is filled once, then read in full a few times; the best repetition
// counts. Throws ug::Error if bytes < 16 MiB (it would measure a cache) or the buffer can't be had.
double measure_read_bandwidth(ThreadPool& pool, size_t bytes = size_t(1) << 30);

}  // namespace ug::cpu
