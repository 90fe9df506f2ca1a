// See gemm_decode.h. Layout of a block (288 threads): warpgroups 0 and 1 consume, warp 8 produces; the block owns
// weight rows [256 b, 256 b + 256) over one k slice. Nine warps put three on one of the SM's four register-file
// quarters (16 K registers each), hence at most 168 registers per thread (__maxnreg__): 64 token rows' two m64
// tiles of accumulators fit, 128 rows' did not (a launch asking for more fails with "too many resources").
// Stage st holds the weight block (256 rows x 64 columns, one 128-byte-swizzle operand of 256 rows: consumer c's
// m64 tiles are its rows 128 c .. + 127) and the activation block (per term, NR rows x 64 columns). "full"
// mbarriers: the producer's cp.async copies landed (32 arrivals); "empty": the consumers' MMAs on the stage
// finished (256 arrivals).
#include <string>

#include "backend/cuda/cp_async.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemm_decode.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/mbarrier.cuh"
#include "backend/cuda/wgmma.cuh"

namespace ug::cuda {
namespace {

constexpr int kConsumerWarps = 8;                   // two warpgroups
constexpr int kThreads = 32 * kConsumerWarps + 32;  // + one producer warp
constexpr int kBlockRows = 256;                     // weight rows per block
constexpr int kBK = 64;                             // k columns per stage: one 128-byte swizzle atom row
constexpr int kMaxStages = 4;
constexpr int kWBytes = kBlockRows * kBK * 2;  // 32 KB

template <int NR, int TERMS>
__host__ __device__ constexpr int x_bytes() {
  return TERMS * NR * kBK * 2;
}
template <int NR, int TERMS>
__host__ __device__ constexpr int stage_bytes() {
  return kWBytes + x_bytes<NR, TERMS>();
}
// Stages in flight: as many as fit, at most 4 (4 for every NR / TERMS used).
template <int NR, int TERMS>
__host__ __device__ constexpr int stages() {
  constexpr int fit = (227 * 1024 - 1024) / stage_bytes<NR, TERMS>();
  return fit < kMaxStages ? fit : kMaxStages;
}
template <int NR, int TERMS>
__host__ __device__ constexpr int smem_bytes() {
  return stages<NR, TERMS>() * stage_bytes<NR, TERMS>() + 1024;  // + alignment of the swizzle atoms
}

template <int NR, int TERMS>
__global__ void __maxnreg__(168) decode_gemm_kernel(DecodeGemmParams p) {
  constexpr int kStageBytes = stage_bytes<NR, TERMS>(), kStages = stages<NR, TERMS>();
  pdl_launch_dependents();
  pdl_wait();
#if UG_WGMMA_ARCH
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  unsigned char* const smem = smem_raw + ((1024 - (__cvta_generic_to_shared(smem_raw) & 1023)) & 1023);
  __shared__ uint64_t full[kMaxStages], empty[kMaxStages];

  const int tiles = int(p.n / kBlockRows);
  const int tile = int(blockIdx.x) % tiles, slice = int(blockIdx.x) / tiles;
  const int64_t k_slice = p.k / p.slices, k0 = slice * k_slice;
  const int n_blocks = int(k_slice / kBK);
  const int warp_id = int(threadIdx.x) / 32;
  if (threadIdx.x == 0) {
    for (int st = 0; st < kStages; ++st) {
      mbar_init(&full[st], 32);
      mbar_init(&empty[st], 256);
    }
    mbar_init_fence();
  }
  __syncthreads();

  if (warp_id == kConsumerWarps) {
    // ---- Producer (one warp): lane copies column chunk c = lane % 8 of weight rows r0 + 4 h + 8 j (r0 = lane / 8,
    // h < 2, j < 32) and of each term's activation rows alike (j < NR / 8; rows past m are zero-filled). Row
    // r0 + 4 h + 8 j sits 1024 j bytes after row r0 + 4 h in the swizzle layout.
    const int lane = int(threadIdx.x) % 32, c = lane % 8, r0 = lane / 8, m = int(p.m);
    const uint16_t* w_src[2];
    const uint16_t* x_src[2];
    uint32_t w_dst[2], x_dst[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      w_src[h] = p.w + (int64_t(tile) * kBlockRows + r0 + 4 * h) * p.k + k0 + c * 8;
      x_src[h] = p.x + int64_t(r0 + 4 * h) * p.k + k0 + c * 8;
      w_dst[h] = smem_addr(smem) + uint32_t(sw128_offset<kBlockRows>(r0 + 4 * h, c));
      x_dst[h] = smem_addr(smem) + uint32_t(kWBytes + sw128_offset<NR>(r0 + 4 * h, c));
    }
    const int64_t row8 = 8 * p.k, term_rows = p.m * p.k;
    for (int b = 0; b < n_blocks; ++b) {
      const int st = b % kStages, round = b / kStages;
      if (round > 0) mbar_wait(&empty[st], uint32_t((round - 1) & 1));
      const uint32_t stage = uint32_t(st * kStageBytes);
      const int64_t col = int64_t(b) * kBK;
#pragma unroll 8
      for (int j = 0; j < kBlockRows / 8; ++j)
#pragma unroll
        for (int h = 0; h < 2; ++h)
          cp_async16_zfill_at(w_dst[h] + stage + uint32_t(j * 1024), w_src[h] + j * row8 + col, true);
#pragma unroll
      for (int term = 0; term < TERMS; ++term)
#pragma unroll
        for (int j = 0; j < NR / 8; ++j)
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const bool valid = r0 + 4 * h + 8 * j < m;
            cp_async16_zfill_at(x_dst[h] + stage + uint32_t(term * NR * kBK * 2 + j * 1024),
                                valid ? x_src[h] + term * term_rows + j * row8 + col : p.x, valid);
          }
      cp_async_mbar_arrive(&full[st]);
    }
    cp_async_wait_all();
    return;
  }

  // ---- Consumers: warpgroup ci (0, 1) multiplies weight rows 128 ci .. + 127 as two m64 tiles.
  const int ci = warp_id / 4, ct = int(threadIdx.x) % 128;
  float acc[2][NR / 2];
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int i = 0; i < NR / 2; ++i) acc[mt][i] = 0.0f;
  const uint64_t w_desc = smem_desc_sw128(smem + ci * 2 * 8192, 16, 1024);
  const uint64_t x_desc = smem_desc_sw128(smem + kWBytes, 16, 1024);
  constexpr uint64_t kStageUnits = kStageBytes / 16, kTileUnits = 8192 / 16, kTermUnits = NR * kBK * 2 / 16;
  for (int b = 0; b < n_blocks; ++b) {
    const int st = b % kStages;
    mbar_wait(&full[st], uint32_t((b / kStages) & 1));
    fence_proxy_async_shared();
    wgmma_hold(acc[0]);
    wgmma_hold(acc[1]);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kBK / 16; ++kk) {
      const uint64_t at = st * kStageUnits + kk * 2;  // 32 bytes per k-step inside the atom
#pragma unroll
      for (int term = 0; term < TERMS; ++term) {
        wgmma_ss_acc<NR>(acc[0], w_desc + at, x_desc + at + term * kTermUnits);
        wgmma_ss_acc<NR>(acc[1], w_desc + at + kTileUnits, x_desc + at + term * kTermUnits);
      }
    }
    wgmma_commit();
    wgmma_wait<1>();  // the previous block's MMAs are done: release its stage
    if (b > 0) mbar_arrive(&empty[(b - 1) % kStages]);
  }
  wgmma_wait<0>();
  wgmma_hold(acc[0]);
  wgmma_hold(acc[1]);

  // Accumulator (m64nNR): warp w's rows 16 w + g (+ 8), columns 8 j + 2 t (+ 1) = weight rows, token rows.
  const int warp = ct / 32, lane = ct % 32, g = lane / 4, t = lane % 4;
  float* y = p.y + int64_t(slice) * p.m * p.n + int64_t(tile) * kBlockRows + ci * 128;
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int j = 0; j < NR / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int row = mt * 64 + warp * 16 + g + (e >> 1) * 8, token = 8 * j + 2 * t + (e & 1);
        if (token < p.m) y[int64_t(token) * p.n + row] = acc[mt][4 * j + e];
      }
#endif
}

template <int NR, int TERMS>
void launch_terms(const DecodeGemmParams& p, cudaStream_t stream) {
  constexpr int bytes = smem_bytes<NR, TERMS>();
  static_assert(bytes <= 227 * 1024, "shared memory of one block");
  UG_CUDA_CHECK(
      cudaFuncSetAttribute(decode_gemm_kernel<NR, TERMS>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  launch_kernel("decode_gemm_kernel", decode_gemm_kernel<NR, TERMS>, unsigned(p.n / kBlockRows * p.slices), kThreads,
                size_t(bytes), stream, p);
}

template <int NR>
void launch(const DecodeGemmParams& p, cudaStream_t stream) {
  if (p.terms == 2)
    launch_terms<NR, 2>(p, stream);
  else
    launch_terms<NR, 1>(p, stream);
}

}  // namespace

int64_t decode_gemm_slices(int64_t m, int64_t n, int64_t k) {
  constexpr int64_t kSms = 132, kMaxSlices = 16;
  const int64_t tiles = n / kBlockRows;
  int64_t slices = 1;
  while (2 * slices <= kMaxSlices && tiles * 2 * slices <= kSms && k % (kBK * 2 * slices) == 0 &&
         8 * 2 * slices * m * n <= n * k)
    slices *= 2;
  return slices;
}

bool decode_gemm_supports(int64_t m, int64_t n, int64_t k, int64_t slices) {
  return m >= 1 && m <= 64 && n >= kBlockRows && n % kBlockRows == 0 && slices >= 1 && k % (kBK * slices) == 0 &&
         wgmma_available();
}

void decode_gemm(const DecodeGemmParams& p, cudaStream_t stream) {
  UG_CUDA_REQUIRE(p.w && p.x && p.y, "decode_gemm", "w, x and y must be set");
  UG_CUDA_REQUIRE(p.terms == 1 || p.terms == 2, "decode_gemm", "terms " + std::to_string(p.terms) + " is not 1 or 2");
  UG_CUDA_REQUIRE(decode_gemm_supports(p.m, p.n, p.k, p.slices), "decode_gemm",
                  "m " + std::to_string(p.m) + ", n " + std::to_string(p.n) + ", k " + std::to_string(p.k) +
                      ", slices " + std::to_string(p.slices) +
                      ": needs m 1..64, n a multiple of 256, k a multiple of 64 x slices, and an sm_90a device");
  if (p.m <= 16) return launch<16>(p, stream);
  if (p.m <= 32) return launch<32>(p, stream);
  launch<64>(p, stream);
}

}  // namespace ug::cuda
