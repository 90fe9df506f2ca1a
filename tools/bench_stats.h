// Timing helpers shared by the bench command's measurements: mean ± sample sd over repetitions, elapsed seconds.
#pragma once

#include <chrono>
#include <cmath>
#include <vector>

namespace ug::cli {

struct Stat {
  double mean = 0, sd = 0;
};

inline Stat stats(const std::vector<double>& v) {
  Stat s;
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= double(v.size());
  for (double x : v) s.sd += (x - s.mean) * (x - s.mean);
  s.sd = v.size() > 1 ? std::sqrt(s.sd / double(v.size() - 1)) : 0;
  return s;
}

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace ug::cli
