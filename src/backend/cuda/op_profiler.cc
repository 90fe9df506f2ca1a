#include "backend/cuda/op_profiler.h"

#include <algorithm>
#include <cstdio>

#include "backend/cuda/cuda_check.h"

namespace ug::cuda {

OpProfiler::~OpProfiler() {
  for (cudaEvent_t e : events_) cudaEventDestroy(e);
}

cudaEvent_t OpProfiler::event(size_t i) {
  while (events_.size() <= i) {
    cudaEvent_t e = nullptr;
    UG_CUDA_CHECK(cudaEventCreate(&e));
    events_.push_back(e);
  }
  return events_[i];
}

void OpProfiler::begin(const char* label) {
  if (step_open_) {  // a step's first op: forget ops of a step that never ended (it failed)
    pending_.clear();
    used_ = 0;
    step_open_ = false;
  }
  pending_.push_back({label, used_});
  UG_CUDA_CHECK(cudaEventRecord(event(used_++), stream_));
}

void OpProfiler::end() { UG_CUDA_CHECK(cudaEventRecord(event(used_++), stream_)); }

void OpProfiler::end_step() {
  if (pending_.empty()) return;
  Kind& kind = kinds_[kind_];
  Tally& tally = kind.first.steps == 0 ? kind.first : kind.rest;
  for (const Pending& p : pending_) {
    float ms = 0;
    UG_CUDA_CHECK(cudaEventElapsedTime(&ms, events_[p.first_event], events_[p.first_event + 1]));
    Total& t = tally.totals[p.label];
    t.ms += ms;
    ++t.calls;
  }
  float wall = 0;
  UG_CUDA_CHECK(cudaEventElapsedTime(&wall, events_[pending_.front().first_event], events_[used_ - 1]));
  tally.wall_ms += wall;
  ++tally.steps;
  pending_.clear();
  used_ = 0;
}

std::string OpProfiler::report() const {
  std::string out = "cuda profile (UNIGEMMA_CUDA_PROFILE): GPU time per step by op\n";
  char line[200];
  for (const auto& [name, k] : kinds_) {
    const bool only_first = k.rest.steps == 0;
    const Tally& kind = only_first ? k.first : k.rest;
    std::vector<std::pair<std::string, Total>> rows(kind.totals.begin(), kind.totals.end());
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
    double sum = 0;
    for (const auto& [label, t] : rows) sum += t.ms;
    const double steps = double(kind.steps);
    out += "  " + name + ", " + std::to_string(kind.steps) +
           (only_first ? " step (the only one: with one-time costs)\n" : " steps after the first\n");
    out += "    op                                calls/step   us/step   share\n";
    for (const auto& [label, t] : rows) {
      std::snprintf(line, sizeof line, "    %-34s %10.1f %9.1f %6.1f%%\n", label.c_str(), double(t.calls) / steps,
                    1000.0 * t.ms / steps, 100.0 * t.ms / sum);
      out += line;
    }
    std::snprintf(line, sizeof line, "    ops summed %.1f us/step; first op start to last op end %.1f us/step\n",
                  1000.0 * sum / steps, 1000.0 * kind.wall_ms / steps);
    out += line;
  }
  return out;
}

}  // namespace ug::cuda
