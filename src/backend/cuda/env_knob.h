// Environment knobs for kernel experiments (A/B runs on the GPU machine, docs/perf.md): each is read once by its
// caller (a function-local static) and documented where it is used.
#pragma once

#include <cstdint>

namespace ug::cuda {

// The knob's value as an integer of at least 1, or fallback when it is unset or empty.
int64_t env_knob(const char* name, int64_t fallback);

// Whether the knob is set to "0" (a switch that turns a path off).
bool env_knob_off(const char* name);

}  // namespace ug::cuda
