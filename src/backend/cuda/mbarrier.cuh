// Shared-memory barriers (mbarrier, sm_90) and the register / named-barrier controls a warp-specialized kernel
// needs: a producer warpgroup loading K / V blocks while consumer warpgroups compute, with no block-wide barrier
// between them. Included by .cu files only; the kernels using them compile for sm_90a (UG_WGMMA_ARCH).
//
// An mbarrier completes a phase when its expected arrivals have arrived; waiters name the phase by its parity
// (0 for the first completion, 1 for the second, ...). cp_async_mbar_arrive makes the arrival happen when the
// thread's earlier cp.async copies have landed, so a consumer that waits for the phase sees the data.
#pragma once

#include <cstdint>

#include "backend/cuda/wgmma.cuh"

namespace ug::cuda {

__device__ __forceinline__ uint32_t smem_addr(const void* p) { return uint32_t(__cvta_generic_to_shared(p)); }

__device__ __forceinline__ void mbar_init(uint64_t* bar, uint32_t arrivals) {
#if UG_WGMMA_ARCH
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(arrivals) : "memory");
#endif
}

// Makes the initialisations visible to the async proxy (cp.async arrivals); a barrier then publishes them.
__device__ __forceinline__ void mbar_init_fence() {
#if UG_WGMMA_ARCH
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#endif
}

// Blocks until the phase of parity `parity` has completed (acquire: the arrivals' writes are visible).
__device__ __forceinline__ void mbar_wait(uint64_t* bar, uint32_t parity) {
#if UG_WGMMA_ARCH
  asm volatile(
      "{\n.reg .pred done;\n"
      "UG_MBAR_RETRY:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra UG_MBAR_RETRY;\n}\n" ::"r"(smem_addr(bar)),
      "r"(parity)
      : "memory");
#endif
}

__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {
#if UG_WGMMA_ARCH
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_addr(bar)) : "memory");
#endif
}

// One arrival, counted in the barrier's expected arrivals, made when this thread's earlier cp.async copies land.
__device__ __forceinline__ void cp_async_mbar_arrive(uint64_t* bar) {
#if UG_WGMMA_ARCH
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(smem_addr(bar)) : "memory");
#endif
}

// Per-thread register budgets of a warpgroup (all 128 threads execute it): the producer gives registers back, the
// consumers take them (the block's 64 K registers are shared out anew).
template <int N>
__device__ __forceinline__ void regs_release() {
#if UG_WGMMA_ARCH
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}
template <int N>
__device__ __forceinline__ void regs_claim() {
#if UG_WGMMA_ARCH
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}

// Barrier `id` (1..15; 0 is __syncthreads) among `threads` threads (a multiple of 32).
__device__ __forceinline__ void named_barrier(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

}  // namespace ug::cuda
