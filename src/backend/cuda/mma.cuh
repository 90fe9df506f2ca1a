// Tensor-core helpers shared by the kernels that use mma.sync m16n8k16 (bf16 in, f32 accumulate): packing f32
// pairs into bf16x2 registers (one term, or the residual second term of a two-term split) and the mma itself.
// Fragment layouts (PTX ISA, mma.m16n8k16 .bf16): lane = 4 g + t holds A rows g and g + 8, columns 2t, 2t + 1
// (+ 8); B rows (k) 2t, 2t + 1 (+ 8) of column g; C rows g and g + 8, columns 2t, 2t + 1. Included by .cu files.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace ug::cuda {

__device__ __forceinline__ uint32_t pack_bf16(float first, float second) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(first, second);  // .x (low half) = first
  return *reinterpret_cast<const uint32_t*>(&v);
}

// One value's two bf16 terms (a two-term split) as bit patterns: hi = bf16(x), lo = bf16(x - hi), round to nearest
// even.
struct Bf16Terms {
  uint16_t hi, lo;
};
__device__ __forceinline__ Bf16Terms bf16_terms(float x) {
  const __nv_bfloat16 hi = __float2bfloat16_rn(x);
  return {__bfloat16_as_ushort(hi), __bfloat16_as_ushort(__float2bfloat16_rn(x - __bfloat162float(hi)))};
}

// The rounding residual of pack_bf16 (second bf16 term of a two-term split).
__device__ __forceinline__ uint32_t pack_residual(float first, float second) {
  return pack_bf16(first - __bfloat162float(__float2bfloat16_rn(first)),
                   second - __bfloat162float(__float2bfloat16_rn(second)));
}

// c += a · b with operands of type T ("bf16" or "f16"): mma (bf16) and mma_f16 (the fp8 cache's values widen to f16
// exactly, one instruction per pair).
#define UG_DEFINE_MMA_M16N8K16(name, T)                                                                 \
  __device__ __forceinline__ void name(float(&c)[4], const uint32_t(&a)[4], uint32_t b0, uint32_t b1) { \
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32." T "." T                                       \
                 ".f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "                                         \
                 "{%0,%1,%2,%3};\n"                                                                     \
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])                                       \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));                       \
  }
UG_DEFINE_MMA_M16N8K16(mma, "bf16")
UG_DEFINE_MMA_M16N8K16(mma_f16, "f16")
#undef UG_DEFINE_MMA_M16N8K16

}  // namespace ug::cuda
