// cuBLASLt bf16 GEMM with a per-shape plan cache (host code only: compiled by the C++ compiler). Row-major y[m, n] =
// x[m, k] · w[n, k]ᵀ is, read column-major, yᵀ[n, m] = w[n, k] · xᵀ[k, m]: A = w seen as column-major [k, n] (ld k)
// used transposed, B = x seen as column-major [k, m] (ld k) used as is, C = D = y seen as column-major [n, m] (ld n).
// That is cuBLASLt's "TN" layout, the best supported one on Hopper.
#include "backend/cuda/gemm.h"

#include <cublasLt.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/env_knob.h"
#include "backend/cuda/gemm_decode.h"
#include "backend/cuda/gemm_tuning_file.h"
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
constexpr int64_t kDecodeGemmRows = 64;  // products of at most this many token rows run on decode_gemm
constexpr int kMaxCandidates = 16;       // UG_GEMM_AUTOTUNE: algorithms timed per shape at most
constexpr int kAutotuneRuns = 5;

struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  // The heuristic's candidates, timed on first use (a kept choice: use_tuning_file; or UG_GEMM_AUTOTUNE).
  std::vector<cublasLtMatmulAlgo_t> untimed;
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

// What every product needs of its shape and weight (the output and the activations are checked by each entry).
void require_product(const void* w, int64_t m, int64_t n, int64_t k) {
  UG_CUDA_REQUIRE(w && aligned(w), "gemm", "w must be set and 16-byte aligned");
  UG_CUDA_REQUIRE(m >= 1 && n >= 1 && k >= 1, "gemm", "empty shape " + shape_name(m, n, k));
  UG_CUDA_REQUIRE(
      k % 8 == 0, "gemm",
      "k " + std::to_string(k) + " is not a multiple of 8 (bf16 rows must be 16-byte aligned; pad the weight at load)");
}

void require_output(const void* y) { UG_CUDA_REQUIRE(y && aligned(y), "gemm", "y must be set and 16-byte aligned"); }

}  // namespace

struct Gemm::Impl {
  cublasLtHandle_t handle = nullptr;
  DeviceBuffer<uint8_t> workspace;
  DeviceBuffer<uint16_t> scratch;  // bf16 activations of run_f32 ([2m, k] when split)
  DeviceBuffer<float> split_out;   // partial outputs [slices, m or 2m, n] of a split or sliced run
  uint64_t allocations = 0;
  std::map<std::tuple<int64_t, int64_t, int64_t, int64_t>, std::unique_ptr<Plan>> plans;
  std::unique_ptr<GemmTuningFile> tuning;  // use_tuning_file; nullptr: no kept choices

  // slices > 1: a strided batch of `slices` products over consecutive k ranges of k / slices (A and B advance by
  // k / slices elements along their rows, C by a whole [n, m] output).
  Plan& plan(int64_t m, int64_t n, int64_t k, int64_t slices) {
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

    const int candidates = candidates_for(m);
    cublasLtMatmulHeuristicResult_t results[kMaxCandidates]{};
    int returned = 0;
    UG_CUBLAS_CHECK(
        cublasLtMatmulAlgoGetHeuristic(handle, p->desc, p->a, p->b, p->c, p->c, pref, candidates, results, &returned));
    UG_CUDA_REQUIRE(returned > 0 && results[0].state == CUBLAS_STATUS_SUCCESS, "gemm",
                    "cuBLASLt has no bf16 algorithm for " + shape_name(m, n, k) +
                        (slices > 1 ? " in " + std::to_string(slices) + " k slices" : ""));
    p->algo = results[0].algo;
    for (int i = 1; i < returned; ++i)
      if (results[i].state == CUBLAS_STATUS_SUCCESS) p->untimed.push_back(results[i].algo);
    if (!p->untimed.empty()) p->untimed.insert(p->untimed.begin(), results[0].algo);
    return *plans.emplace(key, std::move(p)).first->second;
  }

  // Candidates the heuristic is asked for: knob UG_GEMM_AUTOTUNE=N (an experiment: N for every shape, timed in
  // this process only), else kTunedCandidates where a kept choice applies (kept_tuning), else 1.
  int candidates_for(int64_t m) const {
    static const int64_t knob = env_knob("UG_GEMM_AUTOTUNE", 0);
    if (knob > 0) return int(std::min<int64_t>(kMaxCandidates, knob));
    return kept_tuning(m) ? Gemm::kTunedCandidates : 1;
  }
  bool kept_tuning(int64_t m) const { return tuning && m >= Gemm::kTunedRows; }

  // Picks the plan's algorithm among its candidates on its first call: a kept choice of its shape class when the
  // file has one that cuBLASLt accepts for this shape, else by timing (kept when the file can take it).
  void choose(Plan& pl, const uint16_t* w, const uint16_t* x, float* y, int64_t m, int64_t n, int64_t k, int64_t slices,
              cudaStream_t stream) {
    const GemmTuningKey key{.m_class = GemmTuningFile::m_class(m), .n = n, .k = k, .slices = slices};
    if (kept_tuning(m)) {
      if (const GemmAlgoData* kept = tuning->find(key)) {
        cublasLtMatmulAlgo_t algo{};
        static_assert(sizeof algo.data == sizeof(GemmAlgoData));
        std::memcpy(algo.data, kept->data(), sizeof algo.data);
        cublasLtMatmulHeuristicResult_t check{};
        if (cublasLtMatmulAlgoCheck(handle, pl.desc, pl.a, pl.b, pl.c, pl.c, &algo, &check) == CUBLAS_STATUS_SUCCESS &&
            check.workspaceSize <= workspace.bytes()) {
          pl.algo = algo;
          pl.untimed.clear();
          return;
        }
      }
      // Timing a choice that cannot be kept would let the next start take another one (other bits).
      if (!tuning->writable()) {
        pl.untimed.clear();
        return;
      }
    }
    if (!autotune(pl, w, x, y, stream)) return;  // capturing a graph: on a later call
    if (kept_tuning(m)) {
      GemmAlgoData data{};
      std::memcpy(data.data(), pl.algo.data, sizeof pl.algo.data);
      tuning->record(key, data);
    }
  }

  // Times the plan's candidate algorithms on this call's operands (a few runs each, on the stream; not while it is
  // being captured into a graph: returns false) and keeps the fastest, unless it beats the heuristic's first choice
  // by less than kTunedMargin (close timings would otherwise pick differently from run to run). A candidate that
  // fails to run is skipped.
  bool autotune(Plan& pl, const uint16_t* w, const uint16_t* x, float* y, cudaStream_t stream) {
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    UG_CUDA_CHECK(cudaStreamIsCapturing(stream, &capture));
    if (capture != cudaStreamCaptureStatusNone) return false;
    cudaEvent_t start = nullptr, stop = nullptr;
    UG_CUDA_CHECK(cudaEventCreate(&start));
    UG_CUDA_CHECK(cudaEventCreate(&stop));
    const float alpha = 1.0f, beta = 0.0f;
    float best = -1.0f, first = -1.0f;
    for (const cublasLtMatmulAlgo_t& algo : pl.untimed) {
      const auto launch = [&] {
        return cublasLtMatmul(handle, pl.desc, &alpha, w, pl.a, x, pl.b, &beta, y, pl.c, y, pl.c, &algo,
                              workspace.data(), workspace.bytes(), stream);
      };
      if (launch() != CUBLAS_STATUS_SUCCESS) continue;  // the warm-up run
      UG_CUDA_CHECK(cudaEventRecord(start, stream));
      for (int i = 0; i < kAutotuneRuns; ++i) UG_CUBLAS_CHECK(launch());
      UG_CUDA_CHECK(cudaEventRecord(stop, stream));
      UG_CUDA_CHECK(cudaEventSynchronize(stop));
      float ms = 0.0f;
      UG_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
      if (&algo == &pl.untimed.front()) first = ms;
      if (best < 0.0f || ms < best) {
        best = ms;
        pl.algo = algo;
      }
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    if (first >= 0.0f && best > first * float(1.0 - Gemm::kTunedMargin)) pl.algo = pl.untimed.front();
    pl.untimed.clear();
    return true;
  }

  // How a product runs: the rows cuBLASLt sees (2m when split), the k slices, whether decode_gemm takes it instead
  // (then split terms are summed in it), and the output chunks that leaves (slices; on cuBLASLt x 2 for a split).
  struct Shape {
    int64_t rows = 0, slices = 1, chunks = 1;
    bool decode = false;
  };
  static Shape shape(int64_t m, int64_t n, int64_t k, bool split, int64_t k_slices);

  // y (sh.chunks x [m, n], or [m, n] when there is one) = x · wᵀ on the kernel sh names; x as round_input leaves it.
  void product(const Shape& sh, const uint16_t* w, const uint16_t* x, float* y, int64_t m, int64_t n, int64_t k,
               bool split, cudaStream_t stream) {
    if (sh.decode) {
      decode_gemm({.w = w, .x = x, .y = y, .m = m, .n = n, .k = k, .slices = sh.slices, .terms = split ? 2 : 1},
                  stream);
    } else
      matmul(w, x, y, sh.rows, n, k, sh.slices, stream);
  }

  // Grows the activation scratch to `in` bf16 values and the partial outputs to `out` floats.
  void reserve(int64_t in, int64_t out, cudaStream_t stream) {
    if (int64_t(scratch.size()) >= in && int64_t(split_out.size()) >= out) return;
    UG_CUDA_CHECK(cudaStreamSynchronize(stream));  // the old buffers may still be read by queued work
    if (int64_t(scratch.size()) < in) scratch = DeviceBuffer<uint16_t>(size_t(in));
    if (int64_t(split_out.size()) < out) split_out = DeviceBuffer<float>(size_t(out));
    ++allocations;
  }

  // x [m, k] in bf16 in the scratch: rounded, or split into hi rows then lo rows. Also reserves out_floats of
  // partial outputs.
  const uint16_t* round_input(const float* x, int64_t m, int64_t k, bool split, int64_t out_floats,
                              cudaStream_t stream) {
    const int64_t mk = m * k;
    reserve(split ? 2 * mk : mk, out_floats, stream);
    if (split)
      to_bf16_split({.src = x, .hi = scratch.data(), .lo = scratch.data() + mk, .n = mk}, stream);
    else
      to_bf16({.src = x, .dst = scratch.data(), .n = mk}, stream);
    return scratch.data();
  }

  // y (slices x [m, n]) = x · wᵀ over the k slices; the caller checked the arguments.
  void matmul(const uint16_t* w, const uint16_t* x, float* y, int64_t m, int64_t n, int64_t k, int64_t slices,
              cudaStream_t stream) {
    Plan& pl = plan(m, n, k, slices);
    if (!pl.untimed.empty()) choose(pl, w, x, y, m, n, k, slices, stream);
    const float alpha = 1.0f, beta = 0.0f;
    UG_CUBLAS_CHECK(cublasLtMatmul(handle, pl.desc, &alpha, w, pl.a, x, pl.b, &beta, y, pl.c, y, pl.c, &pl.algo,
                                   workspace.data(), workspace.bytes(), stream));
  }
};

int64_t Gemm::auto_k_slices(int64_t m, int64_t n, int64_t k) {
  // Knobs for experiments: UG_GEMM_TARGET_TILES (1: never slice), UG_GEMM_PARTIAL_SHARE (a smaller share allows
  // more slices).
  static const int64_t target = env_knob("UG_GEMM_TARGET_TILES", kTargetTiles);
  static const int64_t partial_share = env_knob("UG_GEMM_PARTIAL_SHARE", kPartialShare);
  const int64_t tiles = ((n + kTileEdge - 1) / kTileEdge) * ((m + kTileEdge - 1) / kTileEdge);
  int64_t slices = 1;
  // Measured on the H200 (docs/perf.md): the partial outputs' traffic (8 bytes per output per slice) eats the gain
  // unless it stays small next to the weight's (2 bytes per element).
  const auto partial_ok = [&](int64_t s) { return 8 * s * m * n * partial_share <= 2 * n * k; };
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

std::vector<std::string> Gemm::use_tuning_file(const std::string& path) {
  impl_->plans.clear();  // plans made so far chose without the file
  impl_->tuning.reset();
  if (path.empty()) return {};
  int device = 0;
  UG_CUDA_CHECK(cudaGetDevice(&device));
  cudaDeviceProp prop{};
  UG_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  std::string tag = std::string(prop.name) + " sm_" + std::to_string(prop.major) + std::to_string(prop.minor) +
                    " cublasLt " + std::to_string(cublasLtGetVersion());
  std::replace(tag.begin(), tag.end(), '\t', ' ');
  impl_->tuning = std::make_unique<GemmTuningFile>(path, tag);
  std::vector<std::string> notes = impl_->tuning->warnings();
  if (!impl_->tuning->writable())
    notes.push_back(path + ": cannot be written; prefill products use cuBLASLt's heuristic choice (no tuning)");
  return notes;
}

size_t Gemm::cached_plans() const { return impl_->plans.size(); }

uint64_t Gemm::allocations() const { return impl_->allocations; }

void Gemm::run(const GemmParams& p, cudaStream_t stream) {
  require_product(p.w, p.m, p.n, p.k);
  require_output(p.y);
  UG_CUDA_REQUIRE(p.x && aligned(p.x), "gemm", "x must be set and 16-byte aligned");
  impl_->matmul(p.w, p.x, p.y, p.m, p.n, p.k, 1, stream);
}

// How a product of m rows runs (Impl::Shape), checked.
Gemm::Impl::Shape Gemm::Impl::shape(int64_t m, int64_t n, int64_t k, bool split, int64_t k_slices) {
  const int64_t rows = split ? 2 * m : m;
  if (takes_decode_gemm(m, n, k, k_slices)) {
    const int64_t slices = decode_gemm_slices(m, n, k);
    return {.rows = rows, .slices = slices, .chunks = slices, .decode = true};
  }
  const int64_t slices = k_slices > 0 ? k_slices : auto_k_slices(rows, n, k);
  UG_CUDA_REQUIRE(k_slices >= 0 && k % (8 * slices) == 0, "gemm",
                  "k_slices " + std::to_string(k_slices) + " must be >= 0 and divide k " + std::to_string(k) +
                      " into multiples of 8");
  return {.rows = rows, .slices = slices, .chunks = slices * (split ? 2 : 1)};
}

int64_t Gemm::decode_rows() {
  // Measured on the H200 (docs/perf.md, sessions 14-18): faster than cuBLASLt on every 12B decode product up to 64
  // rows once its k slices are left as chunks.
  static const int64_t rows = std::clamp<int64_t>(env_knob("UG_GEMM_DECODE_ROWS", kDecodeGemmRows), 0, 64);
  return rows;
}

bool Gemm::takes_decode_gemm(int64_t m, int64_t n, int64_t k, int64_t k_slices) {
  if (k_slices != 0 || !decode_gemm_supports(m, n, k, 1)) return false;
  return m <= decode_rows();
}

int64_t Gemm::chunks_of(int64_t m, int64_t n, int64_t k, bool split, int64_t k_slices) {
  return Impl::shape(m, n, k, split, k_slices).chunks;
}

void Gemm::run_f32(const GemmF32Params& p, cudaStream_t stream) {
  UG_CUDA_REQUIRE(p.x, "gemm", "x must be set");
  require_product(p.w, p.m, p.n, p.k);
  require_output(p.y);
  const Impl::Shape sh = Impl::shape(p.m, p.n, p.k, p.split, p.k_slices);
  if (sh.chunks == 1) {  // the product writes y itself
    impl_->product(sh, p.w, impl_->round_input(p.x, p.m, p.k, p.split, 0, stream), p.y, p.m, p.n, p.k, p.split, stream);
    return;
  }
  const F32Chunks c =
      run_chunks({.w = p.w, .x = p.x, .m = p.m, .n = p.n, .k = p.k, .split = p.split, .k_slices = p.k_slices}, stream);
  sum_chunks({.src = c.data, .dst = p.y, .n = c.stride, .chunks = c.chunks}, stream);
}

F32Chunks Gemm::run_chunks(const GemmChunksParams& p, cudaStream_t stream) {
  UG_CUDA_REQUIRE((p.x != nullptr) != (p.x_bf16 != nullptr), "gemm", "exactly one of x and x_bf16 must be set");
  UG_CUDA_REQUIRE(!p.x_bf16 || aligned(p.x_bf16), "gemm", "x_bf16 must be 16-byte aligned");
  require_product(p.w, p.m, p.n, p.k);
  const Impl::Shape sh = Impl::shape(p.m, p.n, p.k, p.split, p.k_slices);
  const int64_t out_floats = sh.chunks * p.m * p.n;
  const uint16_t* x = p.x_bf16;
  if (p.x)
    x = impl_->round_input(p.x, p.m, p.k, p.split, out_floats, stream);
  else
    impl_->reserve(0, out_floats, stream);
  impl_->product(sh, p.w, x, impl_->split_out.data(), p.m, p.n, p.k, p.split, stream);
  return {.data = impl_->split_out.data(), .chunks = sh.chunks, .stride = p.m * p.n};
}

}  // namespace ug::cuda
