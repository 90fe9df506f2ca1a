// cuBLASLt bf16 GEMM with a per-shape plan cache (host code only: compiled by the C++ compiler). Row-major y[m, n] =
// x[m, k] · w[n, k]ᵀ is, read column-major, yᵀ[n, m] = w[n, k] · xᵀ[k, m]: A = w seen as column-major [k, n] (ld k)
// used transposed, B = x seen as column-major [k, m] (ld k) used as is, C = D = y seen as column-major [n, m] (ld n).
// That is cuBLASLt's "TN" layout, the best supported one on Hopper.
#include "backend/cuda/gemm.h"

#include <cublasLt.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <string>
#include <tuple>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/ops.h"

namespace ug::cuda {
namespace {

constexpr size_t kWorkspaceBytes = size_t(32) << 20;  // NVIDIA's recommendation for Hopper
constexpr uint32_t kAlignment = 16;                   // what run() requires of every pointer
constexpr int64_t kTargetTiles = 132;                 // output tiles for one wave of an H100/H200 (one per SM)
constexpr int64_t kTileEdge = 128;                    // cuBLASLt's usual tile edge for these shapes (an estimate)
constexpr int64_t kMinSliceK = 512;                   // shorter k ranges cost more in partial outputs than they gain
constexpr int64_t kPartialShare = 8;  // partial outputs (written and read back) stay under 1/8 of the weight bytes
constexpr int64_t kMaxSlices = 16;

struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  ~Plan() {
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

std::string shape_name(int64_t m, int64_t n, int64_t k) {
  return "m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k);
}

bool aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % kAlignment == 0; }

// What every product needs of its shape and of the weight and output (the bf16 activations are checked by run();
// run_f32 makes its own).
void require_product(const void* w, const void* y, int64_t m, int64_t n, int64_t k) {
  UG_CUDA_REQUIRE(w && y, "gemm", "w and y must be set");
  UG_CUDA_REQUIRE(m >= 1 && n >= 1 && k >= 1, "gemm", "empty shape " + shape_name(m, n, k));
  UG_CUDA_REQUIRE(
      k % 8 == 0, "gemm",
      "k " + std::to_string(k) + " is not a multiple of 8 (bf16 rows must be 16-byte aligned; pad the weight at load)");
  UG_CUDA_REQUIRE(aligned(w) && aligned(y), "gemm", "w and y must be 16-byte aligned");
}

}  // namespace

struct Gemm::Impl {
  cublasLtHandle_t handle = nullptr;
  DeviceBuffer<uint8_t> workspace;
  DeviceBuffer<uint16_t> scratch;  // bf16 activations of run_f32 ([2m, k] when split)
  DeviceBuffer<float> split_out;   // partial outputs [slices, m or 2m, n] of a split or sliced run
  uint64_t allocations = 0;
  std::map<std::tuple<int64_t, int64_t, int64_t, int64_t>, std::unique_ptr<Plan>> plans;

  // slices > 1: a strided batch of `slices` products over consecutive k ranges of k / slices (A and B advance by
  // k / slices elements along their rows, C by a whole [n, m] output).
  const Plan& plan(int64_t m, int64_t n, int64_t k, int64_t slices) {
    auto key = std::make_tuple(m, n, k, slices);
    if (auto it = plans.find(key); it != plans.end()) return *it->second;
    auto p = std::make_unique<Plan>();
    UG_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
    UG_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a, sizeof trans_a));
    UG_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b, sizeof trans_b));
    const int64_t ks = k / slices;
    UG_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_16BF, uint64_t(ks), uint64_t(n), k));
    UG_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_16BF, uint64_t(ks), uint64_t(m), k));
    UG_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->c, CUDA_R_32F, uint64_t(n), uint64_t(m), n));
    if (slices > 1) {
      const int32_t count = int32_t(slices);
      const int64_t c_stride = m * n;
      for (auto [layout, stride] : {std::pair{p->a, ks}, std::pair{p->b, ks}, std::pair{p->c, c_stride}}) {
        UG_CUBLAS_CHECK(
            cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof count));
        UG_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
                                                         sizeof stride));
      }
    }

    cublasLtMatmulPreference_t pref = nullptr;
    UG_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    struct PrefGuard {
      cublasLtMatmulPreference_t p;
      ~PrefGuard() { cublasLtMatmulPreferenceDestroy(p); }
    } guard{pref};
    const uint64_t ws = kWorkspaceBytes;
    UG_CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
    for (auto attr : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
      UG_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attr, &kAlignment, sizeof kAlignment));

    cublasLtMatmulHeuristicResult_t result{};
    int returned = 0;
    UG_CUBLAS_CHECK(
        cublasLtMatmulAlgoGetHeuristic(handle, p->desc, p->a, p->b, p->c, p->c, pref, 1, &result, &returned));
    UG_CUDA_REQUIRE(returned > 0 && result.state == CUBLAS_STATUS_SUCCESS, "gemm",
                    "cuBLASLt has no bf16 algorithm for " + shape_name(m, n, k) +
                        (slices > 1 ? " in " + std::to_string(slices) + " k slices" : ""));
    p->algo = result.algo;
    return *plans.emplace(key, std::move(p)).first->second;
  }

  // y (slices x [m, n]) = x · wᵀ over the k slices; the caller checked the arguments.
  void matmul(const uint16_t* w, const uint16_t* x, float* y, int64_t m, int64_t n, int64_t k, int64_t slices,
              cudaStream_t stream) {
    const Plan& pl = plan(m, n, k, slices);
    const float alpha = 1.0f, beta = 0.0f;
    UG_CUBLAS_CHECK(cublasLtMatmul(handle, pl.desc, &alpha, w, pl.a, x, pl.b, &beta, y, pl.c, y, pl.c, &pl.algo,
                                   workspace.data(), workspace.bytes(), stream));
  }
};

int64_t Gemm::auto_k_slices(int64_t m, int64_t n, int64_t k) {
  static const int64_t target = [] {  // UG_GEMM_TARGET_TILES: experiments (1: never slice)
    const char* v = std::getenv("UG_GEMM_TARGET_TILES");
    return v && *v ? std::max<int64_t>(1, std::atoll(v)) : kTargetTiles;
  }();
  const int64_t tiles = ((n + kTileEdge - 1) / kTileEdge) * ((m + kTileEdge - 1) / kTileEdge);
  int64_t slices = 1;
  // Measured on the H200 (docs/perf.md): the partial outputs' traffic (8 bytes per output per slice) eats the gain
  // unless it stays small next to the weight's (2 bytes per element).
  const auto partial_ok = [&](int64_t s) { return 8 * s * m * n * kPartialShare <= 2 * n * k; };
  while (tiles * slices < target && slices < kMaxSlices && k % (16 * slices) == 0 && k / (2 * slices) >= kMinSliceK &&
         partial_ok(2 * slices))
    slices *= 2;
  return slices;
}

Gemm::Gemm() : impl_(std::make_unique<Impl>()) {
  UG_CUBLAS_CHECK(cublasLtCreate(&impl_->handle));
  impl_->workspace = DeviceBuffer<uint8_t>(kWorkspaceBytes);
}

Gemm::~Gemm() {
  impl_->plans.clear();
  if (impl_->handle) cublasLtDestroy(impl_->handle);
}

size_t Gemm::cached_plans() const { return impl_->plans.size(); }

uint64_t Gemm::allocations() const { return impl_->allocations; }

void Gemm::run(const GemmParams& p, cudaStream_t stream) {
  require_product(p.w, p.y, p.m, p.n, p.k);
  UG_CUDA_REQUIRE(p.x && aligned(p.x), "gemm", "x must be set and 16-byte aligned");
  impl_->matmul(p.w, p.x, p.y, p.m, p.n, p.k, 1, stream);
}

void Gemm::run_f32(const GemmF32Params& p, cudaStream_t stream) {
  UG_CUDA_REQUIRE(p.x, "gemm", "x must be set");
  require_product(p.w, p.y, p.m, p.n, p.k);
  const int64_t rows = p.split ? 2 * p.m : p.m;
  const int64_t slices = p.k_slices > 0 ? p.k_slices : auto_k_slices(rows, p.n, p.k);
  UG_CUDA_REQUIRE(p.k_slices >= 0 && p.k % (8 * slices) == 0, "gemm",
                  "k_slices " + std::to_string(p.k_slices) + " must be >= 0 and divide k " + std::to_string(p.k) +
                      " into multiples of 8");
  const size_t need = size_t(rows) * size_t(p.k);
  const size_t out_need = p.split || slices > 1 ? size_t(slices * rows) * size_t(p.n) : 0;
  if (impl_->scratch.size() < need || impl_->split_out.size() < out_need) {
    UG_CUDA_CHECK(cudaStreamSynchronize(stream));  // the old scratch may still be read by queued work
    if (impl_->scratch.size() < need) impl_->scratch = DeviceBuffer<uint16_t>(need);
    if (impl_->split_out.size() < out_need) impl_->split_out = DeviceBuffer<float>(out_need);
    ++impl_->allocations;
  }
  const int64_t mk = p.m * p.k;
  if (p.split)
    to_bf16_split({.src = p.x, .hi = impl_->scratch.data(), .lo = impl_->scratch.data() + mk, .n = mk}, stream);
  else
    to_bf16({.src = p.x, .dst = impl_->scratch.data(), .n = mk}, stream);
  if (out_need == 0) {
    impl_->matmul(p.w, impl_->scratch.data(), p.y, rows, p.n, p.k, 1, stream);
    return;
  }
  // Partials [slices][hi rows, lo rows][n]: every chunk of m x n is one term of the sum.
  impl_->matmul(p.w, impl_->scratch.data(), impl_->split_out.data(), rows, p.n, p.k, slices, stream);
  sum_chunks({.src = impl_->split_out.data(), .dst = p.y, .n = p.m * p.n, .chunks = slices * (rows / p.m)}, stream);
}

}  // namespace ug::cuda
