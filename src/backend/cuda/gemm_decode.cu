// See gemm_decode.h. Layout of a block (288 threads): warpgroups 0 and 1 consume, warp 8 produces (its lane 0 issues
// every TMA load); the block owns weight rows [256 t, 256 t + 256) over one k slice. Nine warps put three on one of
// the SM's four register-file quarters (16 K registers each), hence at most 168 registers per thread
// (__maxnreg__): 64 token rows' two m64 tiles of accumulators fit, 128 rows' did not (a launch asking for more
// fails with "too many resources").
// Stage st holds the weight block (256 rows x 64 columns, one 128-byte-swizzle operand of 256 rows: consumer c's
// m64 tiles are its rows 128 c .. + 127) and the activation block (per term, NR rows x 64 columns; rows past m
// arrive as zeros). "full" mbarriers: the stage's bytes landed (one arrival announcing them); "empty": the
// consumers' MMAs on the stage finished (256 arrivals).
#include <cuda.h>

#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemm_decode.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/mbarrier.cuh"
#include "backend/cuda/tensor_map.h"
#include "backend/cuda/tma.cuh"
#include "backend/cuda/wgmma.cuh"

namespace ug::cuda {
namespace {

constexpr int kConsumerThreads = 256;            // two warpgroups
constexpr int kThreads = kConsumerThreads + 32;  // + one producer warp
constexpr int kBlockRows = 256;                  // weight rows per block
constexpr int kBK = 64;                          // k columns per stage: one 128-byte swizzle atom row
constexpr int kMaxStages = 4;
constexpr int kMinSliceBlocks = kMaxStages;    // a k slice fills the pipeline at least once
constexpr int kWBytes = kBlockRows * kBK * 2;  // 32 KB
constexpr int64_t kSms = 132;                  // H100 / H200: one wave of blocks

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

// The N of the activation tile for m token rows.
int tile_rows(int64_t m) { return m <= 16 ? 16 : m <= 32 ? 32 : 64; }

template <int NR, int TERMS>
__global__ void __maxnreg__(168) decode_gemm_kernel(const __grid_constant__ CUtensorMap w_map,
                                                    const __grid_constant__ CUtensorMap x_map, DecodeGemmParams p) {
  constexpr int kStageBytes = stage_bytes<NR, TERMS>(), kStages = stages<NR, TERMS>();
  pdl_launch_dependents();
#if UG_WGMMA_ARCH
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  unsigned char* const smem = smem_raw + ((1024 - (__cvta_generic_to_shared(smem_raw) & 1023)) & 1023);
  __shared__ uint64_t full[kMaxStages], empty[kMaxStages];

  const int tiles = int(p.n / kBlockRows);
  const int tile = int(blockIdx.x) % tiles, slice = int(blockIdx.x) / tiles;
  const int n_blocks = int(p.k / p.slices / kBK), col0 = slice * n_blocks * kBK;
  const int warp_id = int(threadIdx.x) / 32;
  if (threadIdx.x == 0) {
    for (int st = 0; st < kStages; ++st) {
      mbar_init(&full[st], 1);
      mbar_init(&empty[st], kConsumerThreads);
    }
    mbar_init_fence();
  }
  __syncthreads();

  if (warp_id == kConsumerThreads / 32) {
    // ---- Producer (lane 0). The weight does not depend on the previous kernel: the first stages' weight blocks
    // are asked for before pdl_wait, so they stream while that kernel finishes; the activations after it.
    if (threadIdx.x % 32 == 0) {
      const uint64_t stream_once = l2_evict_policy<true>(), keep = l2_evict_policy<false>();
      const uint32_t base = smem_addr(smem);
      const auto load_w = [&](int b) {
        tma_load_2d(base + uint32_t((b % kStages) * kStageBytes), &w_map, col0 + b * kBK, tile * kBlockRows,
                    &full[b % kStages], stream_once);
      };
      const auto load_x = [&](int b) {
#pragma unroll
        for (int term = 0; term < TERMS; ++term)
          tma_load_3d(base + uint32_t((b % kStages) * kStageBytes + kWBytes + term * NR * kBK * 2), &x_map,
                      col0 + b * kBK, 0, term, &full[b % kStages], keep);
      };
      const int ahead = n_blocks < kStages ? n_blocks : kStages;
      for (int b = 0; b < ahead; ++b) {
        mbar_arrive_expect_tx(&full[b], kStageBytes);
        load_w(b);
      }
      pdl_wait();
      for (int b = 0; b < ahead; ++b) load_x(b);
      for (int b = ahead; b < n_blocks; ++b) {
        const int st = b % kStages;
        mbar_wait(&empty[st], uint32_t((b / kStages - 1) & 1));
        mbar_arrive_expect_tx(&full[st], kStageBytes);
        load_w(b);
        load_x(b);
      }
    } else {
      pdl_wait();
    }
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
  pdl_wait();  // y may still be read by the previous kernel

  // This slice's chunk of y.
  float* y = p.y + int64_t(slice) * p.m * p.n + int64_t(tile) * kBlockRows + ci * 128;

  // Accumulator (m64nNR): warp w's rows 16 w + g (+ 8), columns 8 j + 2 t (+ 1) = weight rows, token rows.
  const int warp = ct / 32, lane = ct % 32, g = lane / 4, t = lane % 4;
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int j = 0; j < NR / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int row = mt * 64 + warp * 16 + g + (e >> 1) * 8, token = 8 * j + 2 * t + (e & 1);
        if (token < p.m) y[int64_t(token) * p.n + row] = acc[mt][4 * j + e];
      }
#else
  pdl_wait();
#endif
}

template <int NR, int TERMS>
void launch_terms(const DecodeGemmParams& p, cudaStream_t stream) {
  constexpr int bytes = smem_bytes<NR, TERMS>();
  static_assert(bytes <= 227 * 1024, "shared memory of one block");
  const uint64_t w_dims[] = {uint64_t(p.k), uint64_t(p.n)}, w_strides[] = {uint64_t(p.k) * 2};
  const uint32_t w_box[] = {kBK, kBlockRows};
  const uint64_t x_dims[] = {uint64_t(p.k), uint64_t(p.m), uint64_t(TERMS)},
                 x_strides[] = {uint64_t(p.k) * 2, uint64_t(p.m * p.k) * 2};
  const uint32_t x_box[] = {kBK, NR, 1};
  const CUtensorMap w_map = bf16_tensor_map_sw128(p.w, w_dims, w_strides, w_box, "decode_gemm weight");
  const CUtensorMap x_map = bf16_tensor_map_sw128(p.x, x_dims, x_strides, x_box, "decode_gemm activations");
  UG_CUDA_CHECK(
      cudaFuncSetAttribute(decode_gemm_kernel<NR, TERMS>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  launch_kernel("decode_gemm_kernel", decode_gemm_kernel<NR, TERMS>, unsigned(p.n / kBlockRows * p.slices), kThreads,
                size_t(bytes), stream, w_map, x_map, p);
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
  (void)m;
  const int64_t tiles = n / kBlockRows, k_blocks = k / kBK;
  int64_t best = 1;
  for (int64_t s = 2; tiles * s <= kSms && k_blocks / s >= kMinSliceBlocks; ++s)
    if (k % (kBK * s) == 0) best = s;
  return best;
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
  switch (tile_rows(p.m)) {
    case 16:
      return launch<16>(p, stream);
    case 32:
      return launch<32>(p, stream);
    default:
      return launch<64>(p, stream);
  }
}

}  // namespace ug::cuda
