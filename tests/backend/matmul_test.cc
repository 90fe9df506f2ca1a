// Every matmul ISA path against the double-precision oracle over odd shapes, plus the guarantees
// matmul() makes about threads and bad input.
#include "backend/cpu/matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/bf16.h"
#include "core/error.h"

namespace ug::cpu {
namespace {

constexpr CpuIsa kAllIsas[] = {CpuIsa::Scalar, CpuIsa::Avx2, CpuIsa::Avx512};

// Restores the dispatch state whatever a test does.
struct IsaGuard {
  explicit IsaGuard(CpuIsa isa) { set_isa_override(isa); }
  ~IsaGuard() { clear_isa_override(); }
};

struct Weights {
  DType dtype = DType::F32;
  int64_t rows = 0, cols = 0;
  std::vector<float> f32;
  std::vector<uint16_t> bf16;
  MatrixRef ref() const {
    const void* p = dtype == DType::F32 ? static_cast<const void*>(f32.data()) : bf16.data();
    return MatrixRef{.data = p, .dtype = dtype, .rows = rows, .cols = cols};
  }
  float at(int64_t r, int64_t k) const {
    return dtype == DType::F32 ? f32[r * cols + k] : bf16_to_f32(bf16[r * cols + k]);
  }
};

Weights random_weights(DType dtype, int64_t rows, int64_t cols, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  Weights w;
  w.dtype = dtype;
  w.rows = rows;
  w.cols = cols;
  for (int64_t i = 0; i < rows * cols; ++i) {
    if (dtype == DType::F32) {
      w.f32.push_back(u(rng));
    } else {
      w.bf16.push_back(f32_to_bf16(u(rng)));
    }
  }
  return w;
}

std::vector<float> random_vector(int64_t size, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(size_t(std::max<int64_t>(size, 0)));
  for (float& e : v) e = u(rng);
  return v;
}

// Tolerance: every path computes in f32 with its own summation order (lanes, blocks, trees).
// For ANY order, a dot product of K terms satisfies |ŷ − y| ≤ γ_K Σ|x_k w_k| with γ_K ≈ K·u and
// u = 2^-24 (Higham, Accuracy and Stability, §3.1; products are exact under FMA or rounded once).
// So the bound is (K + 2)·u·Σ|x_k w_k| (≤ 6e-5 relative to Σ|x w| at K = 1000). It is rigorous for
// every path, yet losing or doubling one term (≈ Σ|x w| / K) exceeds it by 1 / (K²·u): ≥ 16× up to
// K = 1000, 2.7× at K = 2500, so dropped tails, wrong masks or a lost k-block fail (checked by
// mutating the kernels).
void expect_close(const std::vector<float>& got, const std::vector<float>& want,
                  const std::vector<float>& x, const Weights& w, int64_t n, const char* what) {
  const double u = std::ldexp(1.0, -24);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t r = 0; r < w.rows; ++r) {
      double mag = 0;
      for (int64_t k = 0; k < w.cols; ++k) mag += std::fabs(double(x[t * w.cols + k]) * w.at(r, k));
      double tol = double(w.cols + 2) * u * mag;
      size_t i = size_t(t * w.rows + r);
      ASSERT_LE(std::fabs(double(got[i]) - want[i]), tol)
          << what << " n=" << n << " rows=" << w.rows << " cols=" << w.cols << " at t=" << t
          << " r=" << r << " got " << got[i] << " want " << want[i];
    }
  }
}

std::vector<float> run_matmul(const std::vector<float>& x, int64_t n, const Weights& w,
                              ThreadPool& pool) {
  std::vector<float> y(size_t(n * w.rows), std::nanf(""));  // NaN: every output must be written
  matmul(x.data(), n, w.ref(), y.data(), pool);
  return y;
}

TEST(CpuFeatures, ThisMachineHasEveryPath) {
  // The test machine is an AVX-512 Zen; if this fails there, the kernels below are not all run.
  EXPECT_EQ(hardware_isa(), CpuIsa::Avx512);
  EXPECT_LE(detected_isa(), hardware_isa());
}

TEST(CpuFeatures, OverrideAndNames) {
  for (CpuIsa isa : kAllIsas) {
    if (isa > hardware_isa()) continue;
    IsaGuard guard(isa);
    EXPECT_EQ(active_isa(), isa);
    EXPECT_EQ(parse_isa_name(isa_name(isa), "test"), isa);
  }
  EXPECT_EQ(active_isa(), detected_isa());
  EXPECT_THROW(parse_isa_name("sse9", "UNIGEMMA_ISA"), Error);
}

TEST(Matmul, EveryIsaMatchesReferenceOnOddShapes) {
  ThreadPool pool(2);
  std::mt19937 rng(1234);
  for (DType dtype : {DType::BF16, DType::F32}) {
    for (int64_t rows : {1, 3, 33, 130}) {
      for (int64_t cols : {1, 7, 16, 31, 64, 100, 257, 640, 1000}) {
        Weights w = random_weights(dtype, rows, cols, rng);
        for (int64_t n : {1, 2, 3, 5, 8, 17, 64}) {
          std::vector<float> x = random_vector(n * cols, rng);
          std::vector<float> want(size_t(n * rows));
          matmul_reference(x.data(), n, w.ref(), want.data());
          for (CpuIsa isa : kAllIsas) {
            if (isa > hardware_isa()) continue;  // never on the test machine (see above)
            IsaGuard guard(isa);
            std::string what = std::string(isa_name(isa)) + " " + std::string(dtype_name(dtype));
            expect_close(run_matmul(x, n, w, pool), want, x, w, n, what.c_str());
          }
        }
      }
    }
  }
}

// Columns beyond the prefill k-block (1024 / 512) add partial sums into y across blocks.
TEST(Matmul, ManyKBlocksWithTail) {
  ThreadPool pool(2);
  std::mt19937 rng(99);
  for (DType dtype : {DType::BF16, DType::F32}) {
    Weights w = random_weights(dtype, 70, 2500, rng);
    for (int64_t n : {1, 4, 5, 40}) {
      std::vector<float> x = random_vector(n * w.cols, rng);
      std::vector<float> want(size_t(n * w.rows));
      matmul_reference(x.data(), n, w.ref(), want.data());
      for (CpuIsa isa : kAllIsas) {
        if (isa > hardware_isa()) continue;
        IsaGuard guard(isa);
        expect_close(run_matmul(x, n, w, pool), want, x, w, n, std::string(isa_name(isa)).c_str());
      }
    }
  }
}

// Bitwise equal, not just close: each output element is computed by exactly one task, and its
// summation order depends only on (cols, k-block, vector width), never on how rows and tokens are
// split into tasks. So the pool size must not change a single bit (a regression here would make
// results machine-dependent).
TEST(Matmul, ResultDoesNotDependOnThreadCount) {
  ThreadPool one(1), two(2), three(3);
  std::mt19937 rng(7);
  for (DType dtype : {DType::BF16, DType::F32}) {
    Weights w = random_weights(dtype, 1001, 1500, rng);
    for (int64_t n : {1, 3, 37, 200}) {
      std::vector<float> x = random_vector(n * w.cols, rng);
      for (CpuIsa isa : kAllIsas) {
        if (isa > hardware_isa()) continue;
        IsaGuard guard(isa);
        std::vector<float> a = run_matmul(x, n, w, one);
        std::vector<float> b = run_matmul(x, n, w, two);
        std::vector<float> c = run_matmul(x, n, w, three);
        EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)))
            << isa_name(isa) << " n=" << n;
        EXPECT_EQ(0, std::memcmp(a.data(), c.data(), a.size() * sizeof(float)))
            << isa_name(isa) << " n=" << n;
      }
    }
  }
}

TEST(Matmul, ZeroColumnsGiveZeros) {
  ThreadPool pool(2);
  std::vector<float> x(3), y(6, 5.0f);
  float dummy = 0;
  matmul(x.data(), 3, MatrixRef{.data = &dummy, .dtype = DType::F32, .rows = 2, .cols = 0},
         y.data(), pool);
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

TEST(Matmul, RejectsBadInput) {
  ThreadPool pool(1);
  std::vector<float> x(4), y(4), wdata(4);
  MatrixRef f16{.data = wdata.data(), .dtype = DType::F16, .rows = 2, .cols = 2};
  try {
    matmul(x.data(), 2, f16, y.data(), pool);
    FAIL() << "F16 weights accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("F16"), std::string::npos) << e.what();
  }
  MatrixRef ok{.data = wdata.data(), .dtype = DType::F32, .rows = 2, .cols = 2};
  EXPECT_THROW(matmul(x.data(), -1, ok, y.data(), pool), Error);
  EXPECT_THROW(matmul(nullptr, 2, ok, y.data(), pool), Error);
  MatrixRef no_data{.data = nullptr, .dtype = DType::F32, .rows = 2, .cols = 2};
  EXPECT_THROW(matmul(x.data(), 2, no_data, y.data(), pool), Error);
}

}  // namespace
}  // namespace ug::cpu
