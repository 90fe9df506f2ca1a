// GPU time per op of one CUDA stream, from event pairs around each op (UNIGEMMA_CUDA_PROFILE=1 turns it on in the
// decoder backend). There is no Nsight Systems on the project's GPU machine; this says where a decode or prefill
// step spends its GPU time, per op kind, and how much of the step's wall time the GPU ops cover.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ug::cuda {

class OpProfiler {
 public:
  explicit OpProfiler(cudaStream_t stream) : stream_(stream) {}
  ~OpProfiler();
  OpProfiler(const OpProfiler&) = delete;
  OpProfiler& operator=(const OpProfiler&) = delete;

  // Brackets one op on the stream; label must outlive the profiler (a string literal).
  void begin(const char* label);
  void end();
  // Marks the start of a step; steps are reported per kind (e.g. "decode, 8 sequences").
  void begin_step(std::string kind) {
    step_open_ = true;
    kind_ = std::move(kind);
  }
  // After the stream has synchronised at the end of a step: adds the step's ops to the totals.
  void end_step();

  // Per step kind, a table: label, calls per step, µs per step, share of the summed op time; then the mean step's
  // summed op time and its wall time from the first op's start to the last op's end (the gap is idle GPU). Steps
  // after the kind's first (Kind says why).
  std::string report() const;
  bool empty() const { return kinds_.empty(); }

 private:
  struct Pending {
    const char* label;
    size_t first_event;
  };
  struct Total {
    double ms = 0;
    int64_t calls = 0;
  };
  cudaEvent_t event(size_t i);

  cudaStream_t stream_;
  std::vector<cudaEvent_t> events_;  // reused every step
  std::vector<Pending> pending_;
  size_t used_ = 0;
  bool step_open_ = false;
  std::string kind_;
  struct Tally {
    std::map<std::string, Total> totals;
    double wall_ms = 0;
    int64_t steps = 0;
  };
  // A kind's first step carries the process's one-time costs (lazy kernel loading, GEMM plans): it is kept apart
  // and reported only when no other step of the kind ran.
  struct Kind {
    Tally first, rest;
  };
  std::map<std::string, Kind> kinds_;
};

// begin() on construction, end() on destruction; does nothing without a profiler.
class OpScope {
 public:
  OpScope(OpProfiler* p, const char* label) : p_(p) {
    if (p_) p_->begin(label);
  }
  ~OpScope() {
    if (p_) p_->end();
  }
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;

 private:
  OpProfiler* p_;
};

}  // namespace ug::cuda
