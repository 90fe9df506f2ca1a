// Asynchronous global -> shared copies (cp.async, compute capability 8.0+): 16 bytes per call, grouped by commit;
// what lets a kernel load the next block of keys while it computes on this one. Included by .cu files.
#pragma once

namespace ug::cuda {

__device__ __forceinline__ void cp_async16(void* smem, const void* global) {
  const unsigned addr = unsigned(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(addr), "l"(global));
}

// The same with the destination as a 32-bit shared address, and when !valid nothing is read and the 16 bytes are
// zero-filled (global must still be a valid address).
__device__ __forceinline__ void cp_async16_zfill_at(unsigned smem_addr, const void* global, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr), "l"(global), "r"(valid ? 16 : 0));
}

// 8 bytes (through L1: .cg takes 16 only), zero-filled when !valid; an fp8 cache's chunks of 8 values.
__device__ __forceinline__ void cp_async8_zfill_at(unsigned smem_addr, const void* global, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(smem_addr), "l"(global), "r"(valid ? 8 : 0));
}

// Shared-memory reads and writes by 32-bit shared address (what cp.async's destinations are kept as).
__device__ __forceinline__ uint2 ld_shared_u32x2(unsigned smem_addr) {
  uint2 v;
  asm volatile("ld.shared.v2.u32 {%0, %1}, [%2];\n" : "=r"(v.x), "=r"(v.y) : "r"(smem_addr));
  return v;
}
__device__ __forceinline__ void st_shared_u32x4(unsigned smem_addr, uint4 v) {
  asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};\n" ::"r"(smem_addr), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w)
               : "memory");
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

// Waits until at most N committed groups (the newest) are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// Waits until at most one committed group (the newest) is still in flight.
__device__ __forceinline__ void cp_async_wait_one() { cp_async_wait<1>(); }

// Waits for every committed group.
__device__ __forceinline__ void cp_async_wait_all() { cp_async_wait<0>(); }

}  // namespace ug::cuda
