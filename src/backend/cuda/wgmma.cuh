// Hopper warpgroup MMA (wgmma.mma_async, sm_90a): a warpgroup of 4 warps (128 threads) multiplies a 64-row A by
// a B of N columns, f32 accumulators in registers, B (and A when not in registers) read by the tensor cores
// straight from shared memory through a matrix descriptor.
//
// Shared-memory layouts: "no swizzle" (a core matrix is 8 rows x 16 bytes (8 bf16 along the row) stored as 128
// contiguous bytes; the descriptor gives the byte distance between core matrices adjacent along K (lbo) and along
// M / N (sbo)) and the 128-byte swizzle (sw128_offset). A K-major operand has its rows along M / N and its
// 16-byte chunks along K; an N-major one (transposed B, e.g. V [keys][d] as the B of P V) has rows along K.
//
// Accumulator layout (PTX ISA, wgmma .m64nNk16): warp w of the warpgroup holds rows 16w .. 16w + 15; lane 4g + t
// holds, for each 8-column block j, d[4j] (row g, column 8j + 2t), d[4j + 1] (g, 8j + 2t + 1), d[4j + 2]
// (g + 8, 8j + 2t), d[4j + 3] (g + 8, 8j + 2t + 1): per warp, mma.sync m16n8's C layout repeated over N. An A in
// registers has mma.sync m16n8k16's A layout per warp (mma.cuh), so the scores of two 8-key blocks are the A
// fragment of P for 16 keys, as in the mma.sync kernels.
//
// Usage: wgmma_fence(); wgmma_* ...; wgmma_commit(); wgmma_wait<0>(); the accumulators must not be read or
// written between the fence and the wait (wgmma_hold() tells the compiler so).
#pragma once

#include <cstdint>

// wgmma exists only in sm_90a code; the PTX target (newer chips) compiles the kernels without it and the host
// never launches them there (wgmma_available()).
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define UG_WGMMA_ARCH 1
#else
#define UG_WGMMA_ARCH 0
#endif

namespace ug::cuda {

// Descriptor of an operand starting at `smem` (16-byte aligned) in the no-swizzle layout.
__device__ __forceinline__ uint64_t smem_desc(const void* smem, uint32_t lbo, uint32_t sbo) {
  const uint32_t addr = uint32_t(__cvta_generic_to_shared(smem));
  return uint64_t((addr & 0x3FFFF) >> 4) | (uint64_t((lbo >> 4) & 0x3FFF) << 16) |
         (uint64_t((sbo >> 4) & 0x3FFF) << 32);
}

// Byte offset of (row r, 8-column chunk c) of an R-row operand in the 128-byte swizzle layout: 1024-byte atoms of
// 8 rows x 64 bf16, atom (c / 8, r / 8) at ((c / 8) x R / 8 + r / 8) x 1024, in it row r % 8 at (r % 8) x 128
// with its 16-byte chunks permuted by XOR with r % 8. The tensor cores undo the XOR from address bits 7-9, so
// the atoms must be 1024-byte aligned; in exchange, reading a 16-byte column of 8 rows touches 8 different bank
// groups (the no-swizzle layout's reads conflict: Nsight Compute counted 2.7x the shared wavefronts).
template <int R>
__device__ __forceinline__ int sw128_offset(int r, int c) {
  return ((c / 8) * (R / 8) + r / 8) * 1024 + (r % 8) * 128 + (((c % 8) ^ (r % 8)) * 16);
}

// Descriptor offset (in 16-byte units) of k-step kk (16 columns) of an R-row K-major operand in that layout: atom
// column kk / 4, then 32 bytes per step inside the atom.
template <int R>
__host__ __device__ constexpr uint64_t sw128_k_step(int kk) {
  return uint64_t(((kk / 4) * (R / 8) * 1024 + (kk % 4) * 32) / 16);
}

// Descriptor of an operand in the 128-byte swizzle layout. K-major (rows along M / N): sbo = the step between
// 8-row groups, lbo unused, and a k-step of 16 columns inside an atom adds 32 bytes to the start. N-major (a
// transposed B: rows along K, 64 columns of N per atom row): lbo = the step between 64-column atoms along N,
// sbo = the step between 8-row groups along K.
__device__ __forceinline__ uint64_t smem_desc_sw128(const void* smem, uint32_t lbo, uint32_t sbo) {
  return smem_desc(smem, lbo, sbo) | (uint64_t(1) << 62);
}

// wgmma reads shared memory through the async proxy: a thread's generic-proxy writes (st.shared, cp.async) must
// be fenced with this before the barrier after which a warpgroup's wgmma reads them (PTX ISA memory consistency
// model, "proxies").
__device__ __forceinline__ void fence_proxy_async_shared() {
#if UG_WGMMA_ARCH
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void wgmma_fence() {
#if UG_WGMMA_ARCH
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wgmma_commit() {
#if UG_WGMMA_ARCH
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
template <int PENDING>
__device__ __forceinline__ void wgmma_wait() {
#if UG_WGMMA_ARCH
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(PENDING) : "memory");
#endif
}
// Keeps the compiler from moving reads / writes of accumulators across the asynchronous MMAs.
template <int N>
__device__ __forceinline__ void wgmma_hold(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}
// The same for A fragments in registers (4 per 16-row k-step): the MMAs read them asynchronously, so they must stay
// live and unchanged until the wait.
template <int N>
__device__ __forceinline__ void wgmma_hold(uint32_t (&a)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) asm volatile("" : "+r"(a[i][j])::"memory");
}

// d[64 x 16] (+)= a[64 x 16] b[16 x 16]; a and b in shared memory, both K-major.
__device__ __forceinline__ void wgmma_ss_n16(float (&d)[8], uint64_t a, uint64_t b, int accumulate) {
#if UG_WGMMA_ARCH
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %10, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n16k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7"
      "}, %8, %9, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
      : "l"(a), "l"(b), "r"(accumulate));
#endif
}

// d[64 x 32] (+)= a[64 x 16] b[16 x 32]; a and b in shared memory, both K-major.
__device__ __forceinline__ void wgmma_ss_n32(float (&d)[16], uint64_t a, uint64_t b, int accumulate) {
#if UG_WGMMA_ARCH
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15"
      "}, %16, %17, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),
        "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
      : "l"(a), "l"(b), "r"(accumulate));
#endif
}

// d[64 x 64] (+)= a[64 x 16] b[16 x 64]; a and b in shared memory, both K-major.
__device__ __forceinline__ void wgmma_ss_n64(float (&d)[32], uint64_t a, uint64_t b, int accumulate) {
#if UG_WGMMA_ARCH
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, "
      "%21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
      "}, %32, %33, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),
        "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]),
        "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]),
        "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "l"(a), "l"(b), "r"(accumulate));
#endif
}

// d[64 x N] += a[64 x 16] b[16 x N] for N 16 / 32 / 64 (the wrappers above, picked at compile time).
template <int N>
__device__ __forceinline__ void wgmma_ss_acc(float (&d)[N / 2], uint64_t a, uint64_t b) {
  static_assert(N == 16 || N == 32 || N == 64, "wgmma_ss_acc: N is 16, 32 or 64");
  if constexpr (N == 16)
    wgmma_ss_n16(d, a, b, 1);
  else if constexpr (N == 32)
    wgmma_ss_n32(d, a, b, 1);
  else
    wgmma_ss_n64(d, a, b, 1);
}

// d[64 x 256] (+)= a[64 x 16] b[16 x 256]; a in registers (per warp, mma.sync's A fragment of its 16 rows), b
// N-major (transposed) in shared memory.
__device__ __forceinline__ void wgmma_rs_n256_tb(float (&d)[128], const uint32_t (&a)[4], uint64_t b, int accumulate) {
#if UG_WGMMA_ARCH
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %133, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, "
      "%21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, "
      "%40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, "
      "%59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, "
      "%78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, "
      "%97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, "
      "%113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"
      "}, {%128, %129, %130, %131}, %132, p, 1, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),
        "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]),
        "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]),
        "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]),
        "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]),
        "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]),
        "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]),
        "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]),
        "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]),
        "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]),
        "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]),
        "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]),
        "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]),
        "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]),
        "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]),
        "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate));
#endif
}

}  // namespace ug::cuda
