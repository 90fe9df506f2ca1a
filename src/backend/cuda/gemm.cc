// cuBLASLt bf16 GEMM with a per-shape plan cache (host code only: compiled by the C++ compiler). Row-major y[m, n] =
// x[m, k] · w[n, k]ᵀ is, read column-major, yᵀ[n, m] = w[n, k] · xᵀ[k, m]: A = w seen as column-major [k, n] (ld k)
// used transposed, B = x seen as column-major [k, m] (ld k) used as is, C = D = y seen as column-major [n, m] (ld n).
// That is cuBLASLt's "TN" layout, the best supported one on Hopper.
#include "backend/cuda/gemm.h"

#include <cublasLt.h>

#include <cmath>

#include <cstdlib>
#include <map>
#include <string>
#include <tuple>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/ops.h"
#include "core/error.h"

namespace ug::cuda {
namespace {

constexpr size_t kWorkspaceBytes = size_t(32) << 20;  // NVIDIA's recommendation for Hopper
constexpr uint32_t kAlignment = 16;                   // what run() requires of every pointer
// Skinny GEMMs (decode batches; a split doubles m) are where cuBLASLt's first heuristic pick is weakest (0.45 of
// the copy bandwidth measured at m = 128): time the candidates once per shape there and keep the fastest.
constexpr int64_t kTuneMaxM = 256;
constexpr int kTuneCandidates = 8;
constexpr int kTuneRuns = 3;

bool autotune_enabled() {  // UG_GEMM_AUTOTUNE=0: the heuristic's first pick everywhere (for comparison)
  static const bool on = [] {
    const char* v = std::getenv("UG_GEMM_AUTOTUNE");
    return !(v && std::string(v) == "0");
  }();
  return on;
}

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

}  // namespace

struct Gemm::Impl {
  cublasLtHandle_t handle = nullptr;
  DeviceBuffer<uint8_t> workspace;
  DeviceBuffer<uint16_t> scratch;  // bf16 activations of run_f32 ([2m, k] when split)
  DeviceBuffer<float> split_out;   // [2m, n] of a split run
  uint64_t allocations = 0;
  std::map<std::tuple<int64_t, int64_t, int64_t>, std::unique_ptr<Plan>> plans;

  // The plan of p's shape; a new skinny shape is tuned on p's own buffers (y is overwritten, then recomputed).
  const Plan& plan(const GemmParams& p, cudaStream_t stream) {
    const int64_t m = p.m, n = p.n, k = p.k;
    auto key = std::make_tuple(m, n, k);
    if (auto it = plans.find(key); it != plans.end()) return *it->second;
    auto plan = std::make_unique<Plan>();
    UG_CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
    UG_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a, sizeof trans_a));
    UG_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b, sizeof trans_b));
    UG_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan->a, CUDA_R_16BF, uint64_t(k), uint64_t(n), k));
    UG_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan->b, CUDA_R_16BF, uint64_t(k), uint64_t(m), k));
    UG_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan->c, CUDA_R_32F, uint64_t(n), uint64_t(m), n));

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

    cublasLtMatmulHeuristicResult_t results[kTuneCandidates]{};
    int returned = 0;
    UG_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(handle, plan->desc, plan->a, plan->b, plan->c, plan->c, pref,
                                                   kTuneCandidates, results, &returned));
    UG_CUDA_REQUIRE(returned > 0 && results[0].state == CUBLAS_STATUS_SUCCESS, "gemm",
                    "cuBLASLt has no bf16 algorithm for " + shape_name(m, n, k));
    plan->algo = results[0].algo;
    cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
    UG_CUDA_CHECK(cudaStreamIsCapturing(stream, &capturing));
    if (autotune_enabled() && m <= kTuneMaxM && returned > 1 && capturing == cudaStreamCaptureStatusNone)
      plan->algo = fastest(*plan, results, returned, p, stream);
    return *plans.emplace(key, std::move(plan)).first->second;
  }

  void matmul(const Plan& plan, const cublasLtMatmulAlgo_t& algo, const GemmParams& p, cudaStream_t stream) {
    const float alpha = 1.0f, beta = 0.0f;
    UG_CUBLAS_CHECK(cublasLtMatmul(handle, plan.desc, &alpha, p.w, plan.a, p.x, plan.b, &beta, p.y, plan.c, p.y,
                                   plan.c, &algo, workspace.data(), workspace.bytes(), stream));
  }

  // Each candidate runs on a cold L2 (a 256 MiB write evicts it first): decode GEMMs stream their weights from
  // memory, and timing back-to-back runs on an L2-resident weight favours other algorithms (measured: worse picks).
  cublasLtMatmulAlgo_t fastest(const Plan& plan, const cublasLtMatmulHeuristicResult_t* results, int count,
                               const GemmParams& p, cudaStream_t stream) {
    DeviceBuffer<uint8_t> flush;
    try {
      flush = DeviceBuffer<uint8_t>(size_t(256) << 20);
    } catch (const Error&) {  // no room to spare (a full 16 GB card): keep the heuristic's pick
      cudaGetLastError();
      return results[0].algo;
    }
    cudaEvent_t start = nullptr, stop = nullptr;
    UG_CUDA_CHECK(cudaEventCreate(&start));
    UG_CUDA_CHECK(cudaEventCreate(&stop));
    cublasLtMatmulAlgo_t best = results[0].algo;
    float best_ms = INFINITY;
    for (int i = 0; i < count; ++i) {
      if (results[i].state != CUBLAS_STATUS_SUCCESS) continue;
      matmul(plan, results[i].algo, p, stream);  // warm-up
      float total = 0;
      for (int r = 0; r < kTuneRuns; ++r) {
        UG_CUDA_CHECK(cudaMemsetAsync(flush.data(), r, flush.bytes(), stream));
        UG_CUDA_CHECK(cudaEventRecord(start, stream));
        matmul(plan, results[i].algo, p, stream);
        UG_CUDA_CHECK(cudaEventRecord(stop, stream));
        UG_CUDA_CHECK(cudaEventSynchronize(stop));
        float ms = 0;
        UG_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
        total += ms;
      }
      if (total < best_ms) {
        best_ms = total;
        best = results[i].algo;
      }
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return best;
  }
};

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
  UG_CUDA_REQUIRE(p.w && p.x && p.y, "gemm", "w, x and y must be set");
  UG_CUDA_REQUIRE(p.m >= 1 && p.n >= 1 && p.k >= 1, "gemm", "empty shape " + shape_name(p.m, p.n, p.k));
  UG_CUDA_REQUIRE(p.k % 8 == 0, "gemm",
                  "k " + std::to_string(p.k) +
                      " is not a multiple of 8 (bf16 rows must be 16-byte aligned; pad the weight at load)");
  UG_CUDA_REQUIRE(aligned(p.w) && aligned(p.x) && aligned(p.y), "gemm", "w, x and y must be 16-byte aligned");
  const Plan& plan = impl_->plan(p, stream);
  impl_->matmul(plan, plan.algo, p, stream);
}

void Gemm::run_f32(const GemmF32Params& p, cudaStream_t stream) {
  UG_CUDA_REQUIRE(p.x, "gemm", "x must be set");
  UG_CUDA_REQUIRE(p.m >= 1 && p.k >= 1, "gemm", "empty shape " + shape_name(p.m, p.n, p.k));
  const size_t need = size_t(p.m) * size_t(p.k) * (p.split ? 2 : 1);
  const size_t out_need = p.split ? size_t(2 * p.m) * size_t(p.n) : 0;
  if (impl_->scratch.size() < need || impl_->split_out.size() < out_need) {
    UG_CUDA_CHECK(cudaStreamSynchronize(stream));  // the old scratch may still be read by queued work
    if (impl_->scratch.size() < need) impl_->scratch = DeviceBuffer<uint16_t>(need);
    if (impl_->split_out.size() < out_need) impl_->split_out = DeviceBuffer<float>(out_need);
    ++impl_->allocations;
  }
  if (!p.split) {
    to_bf16({.src = p.x, .dst = impl_->scratch.data(), .n = int64_t(need)}, stream);
    run({.w = p.w, .x = impl_->scratch.data(), .y = p.y, .m = p.m, .n = p.n, .k = p.k}, stream);
    return;
  }
  const int64_t mk = p.m * p.k, mn = p.m * p.n;
  to_bf16_split({.src = p.x, .hi = impl_->scratch.data(), .lo = impl_->scratch.data() + mk, .n = mk}, stream);
  run({.w = p.w, .x = impl_->scratch.data(), .y = impl_->split_out.data(), .m = 2 * p.m, .n = p.n, .k = p.k}, stream);
  add_halves({.src = impl_->split_out.data(), .dst = p.y, .n = mn}, stream);
}

}  // namespace ug::cuda
