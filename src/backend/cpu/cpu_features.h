// Which SIMD instruction set the CPU kernels may use. Detection is cpuid + xgetbv (the OS must
// have enabled the register state, not just the CPU support it); only this layer dispatches on it.
#pragma once

#include <string_view>

namespace ug::cpu {

// Ordered: a higher value implies everything a lower one needs.
enum class CpuIsa { Scalar, Avx2, Avx512 };

std::string_view isa_name(CpuIsa isa);  // "scalar", "avx2", "avx512"
// Parses "scalar" / "avx2" / "avx512"; throws ug::Error naming `what` on anything else.
CpuIsa parse_isa_name(std::string_view name, std::string_view what);

// What this CPU + OS supports (cpuid + xgetbv), ignoring the environment.
CpuIsa hardware_isa();
// hardware_isa(), lowered by env UNIGEMMA_ISA=scalar|avx2|avx512 (asking for more than the
// hardware has is an error). Computed once.
CpuIsa detected_isa();
// The ISA kernels use now: the override if one is set, else detected_isa().
CpuIsa active_isa();
// Forces a path (tests and benchmarks run every one); throws if the hardware lacks it.
void set_isa_override(CpuIsa isa);
void clear_isa_override();

}  // namespace ug::cpu
