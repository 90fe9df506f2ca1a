#include "backend/cpu/cpu_features.h"

#include <cpuid.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>

#include "core/error.h"

namespace ug::cpu {
namespace {

struct CpuidRegs {
  unsigned a = 0, b = 0, c = 0, d = 0;
};

CpuidRegs cpuid(unsigned leaf, unsigned subleaf) {
  CpuidRegs r;
  if (!__get_cpuid_count(leaf, subleaf, &r.a, &r.b, &r.c, &r.d)) return CpuidRegs{};
  return r;
}

// XCR0: which register states the OS saves on context switch. Inline asm so this file needs no
// ISA flags (it is compiled for baseline x86-64).
uint64_t xgetbv0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}

bool bit(unsigned reg, int n) { return (reg >> n) & 1u; }

CpuIsa probe_hardware() {
  CpuidRegs l1 = cpuid(1, 0);
  bool osxsave = bit(l1.c, 27), avx = bit(l1.c, 28), fma = bit(l1.c, 12), f16c = bit(l1.c, 29);
  if (!osxsave || !avx) return CpuIsa::Scalar;
  uint64_t xcr0 = xgetbv0();
  bool ymm_state = (xcr0 & 0x6) == 0x6;    // SSE + AVX upper halves
  bool zmm_state = (xcr0 & 0xe0) == 0xe0;  // opmask + ZMM0-15 upper + ZMM16-31
  CpuidRegs l7 = cpuid(7, 0);
  bool avx2 = bit(l7.b, 5);
  if (!(ymm_state && avx2 && fma && f16c)) return CpuIsa::Scalar;
  // The AVX-512 file is compiled with F, DQ, BW, VL (and BF16, whose instructions we never use).
  bool avx512 = bit(l7.b, 16) && bit(l7.b, 17) && bit(l7.b, 30) && bit(l7.b, 31);
  return avx512 && zmm_state ? CpuIsa::Avx512 : CpuIsa::Avx2;
}

CpuIsa detect_from_env() {
  CpuIsa hw = hardware_isa();
  const char* env = std::getenv("UNIGEMMA_ISA");
  if (env == nullptr || *env == '\0') return hw;
  CpuIsa want = parse_isa_name(env, "environment variable UNIGEMMA_ISA");
  UG_CHECK(want <= hw, "UNIGEMMA_ISA={} asks for more than this CPU supports (best: {})",
           isa_name(want), isa_name(hw));
  return want;
}

constexpr int kNoOverride = -1;
std::atomic<int> g_override{kNoOverride};

}  // namespace

std::string_view isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Scalar:
      return "scalar";
    case CpuIsa::Avx2:
      return "avx2";
    case CpuIsa::Avx512:
      return "avx512";
  }
  return "?";
}

CpuIsa parse_isa_name(std::string_view name, std::string_view what) {
  for (CpuIsa isa : {CpuIsa::Scalar, CpuIsa::Avx2, CpuIsa::Avx512}) {
    if (name == isa_name(isa)) return isa;
  }
  fail("{}: unknown instruction set '{}' (expected scalar, avx2 or avx512)", what, name);
}

CpuIsa hardware_isa() {
  static const CpuIsa isa = probe_hardware();
  return isa;
}

CpuIsa detected_isa() {
  static const CpuIsa isa = detect_from_env();
  return isa;
}

CpuIsa active_isa() {
  int o = g_override.load(std::memory_order_relaxed);
  return o == kNoOverride ? detected_isa() : CpuIsa(o);
}

void set_isa_override(CpuIsa isa) {
  UG_CHECK(isa <= hardware_isa(), "set_isa_override: {} requested but this CPU supports only {}",
           isa_name(isa), isa_name(hardware_isa()));
  g_override.store(int(isa), std::memory_order_relaxed);
}

void clear_isa_override() { g_override.store(kNoOverride, std::memory_order_relaxed); }

}  // namespace ug::cpu
