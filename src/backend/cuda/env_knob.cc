#include "backend/cuda/env_knob.h"

#include <algorithm>
#include <cstdlib>
#include <string_view>

namespace ug::cuda {

int64_t env_knob(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::max<int64_t>(1, std::atoll(v)) : fallback;
}

bool env_knob_off(const char* name) {
  const char* v = std::getenv(name);
  return v && std::string_view(v) == "0";
}

}  // namespace ug::cuda
