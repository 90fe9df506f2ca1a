// Tensor-memory-accelerator loads (sm_90a): one thread asks for a whole tile described by a CUtensorMap
// (tensor_map.h); the bytes land in shared memory in the map's swizzle layout and are counted on an mbarrier, whose
// phase completes when the bytes announced by mbar_arrive_expect_tx have all arrived. Included by .cu files only.
#pragma once

#include <cuda.h>

#include <cstdint>

#include "backend/cuda/mbarrier.cuh"

namespace ug::cuda {

// One arrival on `bar` that also announces `bytes` more to come from TMA loads in this phase.
__device__ __forceinline__ void mbar_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
#if UG_WGMMA_ARCH
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(bytes) : "memory");
#endif
}

// L2 policies for TMA loads: data read once (a weight streamed by a decode step) goes first when L2 needs room
// (kFirst); data many blocks read (the step's activations) stays.
template <bool kFirst>
__device__ __forceinline__ uint64_t l2_evict_policy() {
  uint64_t policy = 0;
#if UG_WGMMA_ARCH
  if constexpr (kFirst)
    asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(policy));
  else
    asm volatile("createpolicy.fractional.L2::evict_last.b64 %0, 1.0;\n" : "=l"(policy));
#endif
  return policy;
}

// The box of `map` at element coordinates (c0 innermost, c1[, c2]) into shared memory at dst (1024-byte aligned
// for the 128-byte swizzle), counted on bar.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const CUtensorMap* map, int c0, int c1, uint64_t* bar,
                                            uint64_t policy) {
#if UG_WGMMA_ARCH
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint"
      " [%0], [%1, {%2, %3}], [%4], %5;\n" ::"r"(dst),
      "l"(map), "r"(c0), "r"(c1), "r"(smem_addr(bar)), "l"(policy)
      : "memory");
#endif
}
__device__ __forceinline__ void tma_load_3d(uint32_t dst, const CUtensorMap* map, int c0, int c1, int c2, uint64_t* bar,
                                            uint64_t policy) {
#if UG_WGMMA_ARCH
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint"
      " [%0], [%1, {%2, %3, %4}], [%5], %6;\n" ::"r"(dst),
      "l"(map), "r"(c0), "r"(c1), "r"(c2), "r"(smem_addr(bar)), "l"(policy)
      : "memory");
#endif
}

}  // namespace ug::cuda
