// The tanh-based activations (ops.h): GeGLU's gelu_tanh and the final logit softcap, over tanh_f32. Compiled
// with -fno-trapping-math (so that GCC turns tanh_f32's selects into blends and vectorizes the loops) and
// -ffp-contract=off (no fused multiply-adds: every clone below rounds each operation the same way, so results
// are bitwise the same on every machine); target_clones picks the widest vectors the CPU has at load time.
#include <cstdint>

#include "backend/cpu/ops.h"
#include "backend/cpu/tanh_f32.h"

namespace ug::cpu {

__attribute__((target_clones("avx512f", "avx2", "default"))) void gelu_tanh_mul(const float* gate, const float* up,
                                                                                float* out, int64_t n) {
  constexpr float kAlpha = 0.7978845608028654f;  // sqrt(2/pi)
  for (int64_t i = 0; i < n; ++i) {
    const float z = gate[i];
    const float g = 0.5f * z * (1.0f + tanh_f32(kAlpha * (z + 0.044715f * z * z * z)));
    out[i] = g * up[i];
  }
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void softcap(float* logits, int64_t n, float cap) {
  for (int64_t i = 0; i < n; ++i) logits[i] = cap * tanh_f32(logits[i] / cap);
}

}  // namespace ug::cpu
