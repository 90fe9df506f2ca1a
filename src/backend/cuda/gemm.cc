// cuBLASLt bf16 GEMM with a per-shape plan cache (host code only: compiled by the C++ compiler). Row-major y[m, n] =
// x[m, k] · w[n, k]ᵀ is, read column-major, yᵀ[n, m] = w[n, k] · xᵀ[k, m]: A = w seen as column-major [k, n] (ld k)
// used transposed, B = x seen as column-major [k, m] (ld k) used as is, C = D = y seen as column-major [n, m] (ld n).
// That is cuBLASLt's "TN" layout, the best supported one on Hopper.
#include "backend/cuda/gemm.h"

#include <cublasLt.h>

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

  const Plan& plan(int64_t m, int64_t n, int64_t k) {
    auto key = std::make_tuple(m, n, k);
    if (auto it = plans.find(key); it != plans.end()) return *it->second;
    auto p = std::make_unique<Plan>();
    UG_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
    UG_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a, sizeof trans_a));
    UG_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b, sizeof trans_b));
    UG_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_16BF, uint64_t(k), uint64_t(n), k));
    UG_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_16BF, uint64_t(k), uint64_t(m), k));
    UG_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->c, CUDA_R_32F, uint64_t(n), uint64_t(m), n));

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
                    "cuBLASLt has no bf16 algorithm for " + shape_name(m, n, k));
    p->algo = result.algo;
    return *plans.emplace(key, std::move(p)).first->second;
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
  const Plan& plan = impl_->plan(p.m, p.n, p.k);
  const float alpha = 1.0f, beta = 0.0f;
  UG_CUBLAS_CHECK(cublasLtMatmul(impl_->handle, plan.desc, &alpha, p.w, plan.a, p.x, plan.b, &beta, p.y, plan.c, p.y,
                                 plan.c, &plan.algo, impl_->workspace.data(), impl_->workspace.bytes(), stream));
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
