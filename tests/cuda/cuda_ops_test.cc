// CUDA backend ops vs their CPU oracles (backend/cpu) over odd shapes. Every test skips itself on a machine
// without a usable GPU (CI), so the suite builds and passes everywhere; scripts/gpu_check.sh runs it on the
// H200. Inputs are random, never zeros (they hide unwritten outputs); outputs are poisoned first.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "backend/cpu/matmul.h"
#include "backend/cpu/ops.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/gemm_decode.h"
#include "backend/cuda/ops.h"
#include "core/bf16.h"
#include "core/error.h"
#include "cuda/cuda_test_util.h"
#include "test_util.h"

namespace ug::cuda {
namespace {

class CudaOps : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!device_available()) GTEST_SKIP() << "no CUDA device (cudaGetDeviceCount failed or found none)";
  }
};

using test::error_of;
using test::inv_freq_for;
using test::poison;
using test::random_floats;
using test::to_bf16_host;
using test::upload;

// ---------------------------------------------------------------- RMSNorm
// Tolerance: both sides sum squares in double and take inv = float(1/sqrt(ms + eps)); the sums differ only
// in order (relative ~1e-15), so inv agrees to 1 ulp and y = x*inv*w to ~3 f32 ulps (3.6e-7 relative).
// With the fused residual, r + y adds one more rounding relative to |r| + |y|. 1e-5 of |r| + |y| leaves
// 25x margin and still catches any wrong element (a wrong row, a missing weight, a stale value).
TEST_F(CudaOps, RmsNormMatchesCpu) {
  uint32_t seed = 1;
  for (int64_t rows : {1, 3, 17, 257}) {
    for (int64_t dim : {64, 200, 3840}) {
      for (WeightType wt : {WeightType::None, WeightType::F32, WeightType::BF16}) {
        for (bool with_residual : {false, true}) {
          SCOPED_TRACE("rows=" + std::to_string(rows) + " dim=" + std::to_string(dim) +
                       " weight=" + std::to_string(int(wt)) + " residual=" + std::to_string(with_residual));
          const size_t n = size_t(rows * dim);
          auto x = random_floats(n, seed++, -3.0f, 3.0f);
          auto res = random_floats(n, seed++);
          auto w = random_floats(size_t(dim), seed++, 0.5f, 1.5f);
          auto wb = to_bf16_host(w);
          std::vector<float> w_used(static_cast<size_t>(dim));  // what the kernel sees, widened to f32
          for (int64_t i = 0; i < dim; ++i)
            w_used[size_t(i)] = wt == WeightType::BF16 ? bf16_to_f32(wb[size_t(i)]) : w[size_t(i)];

          std::vector<float> norm(n);
          cpu::rms_norm_to(x.data(), norm.data(), rows, dim, wt == WeightType::None ? nullptr : w_used.data(), 1e-6);

          auto dx = upload(x);
          auto dres = upload(res);
          auto dw = upload(w);
          auto dwb = upload(wb);
          DeviceBuffer<float> dout(n);
          poison(dout);
          const void* weight = wt == WeightType::F32    ? static_cast<const void*>(dw.data())
                               : wt == WeightType::BF16 ? static_cast<const void*>(dwb.data())
                                                        : nullptr;
          rms_norm({.x = dx.data(),
                    .out = dout.data(),
                    .weight = weight,
                    .weight_type = wt,
                    .residual = with_residual ? dres.data() : nullptr,
                    .rows = rows,
                    .dim = dim,
                    .eps = 1e-6});
          auto out = dout.to_host();
          int bad = 0;
          for (size_t i = 0; i < n && bad < 5; ++i) {
            const float r = with_residual ? res[i] : 0.0f;
            const float ref = r + norm[i];
            const float tol = 1e-5f * (std::fabs(r) + std::fabs(norm[i])) + 1e-30f;
            if (!(std::fabs(out[i] - ref) <= tol)) {
              ADD_FAILURE() << "element " << i << ": cuda " << out[i] << " cpu " << ref;
              ++bad;
            }
          }
        }
      }
    }
  }
}

TEST_F(CudaOps, RmsNormInPlaceIntoResidual) {
  const int64_t rows = 17, dim = 200;
  auto x = random_floats(size_t(rows * dim), 77);
  auto res = random_floats(size_t(rows * dim), 78);
  std::vector<float> norm(x.size());
  cpu::rms_norm_to(x.data(), norm.data(), rows, dim, nullptr, 1e-6);
  auto dx = upload(x);
  auto dres = upload(res);
  rms_norm({.x = dx.data(), .out = dres.data(), .residual = dres.data(), .rows = rows, .dim = dim});
  auto out = dres.to_host();
  for (size_t i = 0; i < x.size(); ++i)
    ASSERT_NEAR(out[i], res[i] + norm[i], 1e-5f * (std::fabs(res[i]) + std::fabs(norm[i]))) << i;
}

// ---------------------------------------------------------------- RoPE
// Tolerance: both sides form the same f32 angle and take cos/sin in double rounded to f32 (identical, or
// 1 ulp apart where a double result sits next to an f32 rounding boundary); the two products and the sum
// may be fused (FMA) on the GPU, so each output differs by at most a few ulps of |x1| + |x2| (~4e-7).
// Pairs with inv_freq 0 must pass through bit-exactly (cos 1, sin 0).
TEST_F(CudaOps, RopeMatchesCpu) {
  uint32_t seed = 100;
  struct Kind {
    const char* name;
    double theta;
    double rotating_fraction;
  };
  for (Kind kind : {Kind{"default", 10000.0, 1.0}, Kind{"proportional", 1e6, 0.25}}) {
    for (int64_t head_dim : {6, 16, 18, 256, 512}) {
      for (int64_t n_tokens : {1, 3, 17, 257}) {
        for (int64_t n_heads : {1, 3, 8}) {
          SCOPED_TRACE(std::string(kind.name) + " head_dim=" + std::to_string(head_dim) +
                       " tokens=" + std::to_string(n_tokens) + " heads=" + std::to_string(n_heads));
          const int64_t half = head_dim / 2;
          const int64_t rotating = int64_t(kind.rotating_fraction * double(half));
          auto inv_freq = inv_freq_for(head_dim, kind.theta, rotating);
          std::mt19937 rng(seed++);
          std::vector<int64_t> pos(static_cast<size_t>(n_tokens));
          for (auto& p : pos) p = std::uniform_int_distribution<int64_t>(0, 131071)(rng);
          auto x = random_floats(size_t(n_tokens * n_heads * head_dim), seed++);
          auto ref = x;
          cpu::rope(ref.data(), n_tokens, n_heads, head_dim, pos, inv_freq);

          auto dx = upload(x);
          auto dpos = upload(pos);
          auto dfreq = upload(inv_freq);
          rope({.x = dx.data(),
                .positions = dpos.data(),
                .inv_freq = dfreq.data(),
                .n_tokens = n_tokens,
                .n_heads = n_heads,
                .head_dim = head_dim});
          auto out = dx.to_host();
          int bad = 0;
          for (int64_t r = 0; r < n_tokens * n_heads && bad < 5; ++r) {
            for (int64_t i = 0; i < half; ++i) {
              const size_t a = size_t(r * head_dim + i), b = a + size_t(half);
              const float tol = 1e-5f * (std::fabs(x[a]) + std::fabs(x[b]));
              const bool exact = inv_freq[size_t(i)] == 0.0f;
              const bool ok = exact ? (out[a] == x[a] && out[b] == x[b])
                                    : (std::fabs(out[a] - ref[a]) <= tol && std::fabs(out[b] - ref[b]) <= tol);
              if (!ok) {
                ADD_FAILURE() << "row " << r << " pair " << i << (exact ? " (pass-through)" : "") << ": cuda ("
                              << out[a] << ", " << out[b] << ") cpu (" << ref[a] << ", " << ref[b] << ")";
                if (++bad >= 5) break;
              }
            }
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------- GeGLU, softcap, bf16 rounding
// GeGLU tolerance: tanhf differs from std::tanh by <= 2 ulps; 1 + tanh(u) cancels for negative gates, so
// the absolute error is ~0.5|z| * 2ulp(1) * |up| rather than relative to the (small) result. Allowed:
// 1e-5 * (|ref| + 0.5|z * up|): ~40x the f32 bound, far below any wrong-formula difference.
TEST_F(CudaOps, GeluTanhMulMatchesCpu) {
  uint32_t seed = 300;
  for (int64_t n : {1, 3, 17, 257, 3840 * 17 + 5}) {
    SCOPED_TRACE("n=" + std::to_string(n));
    auto gate = random_floats(size_t(n), seed++, -6.0f, 6.0f);
    auto up = random_floats(size_t(n), seed++);
    std::vector<float> ref(static_cast<size_t>(n));
    cpu::gelu_tanh_mul(gate.data(), up.data(), ref.data(), n);
    auto dg = upload(gate);
    auto du = upload(up);
    DeviceBuffer<float> dout(static_cast<size_t>(n));
    poison(dout);
    gelu_tanh_mul({.gate = dg.data(), .up = du.data(), .out = dout.data(), .n = n});
    auto out = dout.to_host();
    for (size_t i = 0; i < size_t(n); ++i) {
      const float tol = 1e-5f * (std::fabs(ref[i]) + 0.5f * std::fabs(gate[i] * up[i])) + 1e-30f;
      ASSERT_LE(std::fabs(out[i] - ref[i]), tol) << "element " << i << " gate " << gate[i] << " up " << up[i];
    }
  }
}

// Softcap tolerance: cap * tanhf(x / cap) has three roundings plus tanhf's 2 ulps: ~5 ulps relative
// (6e-7); tanh(u) ~ u near 0 keeps that relative there too. 1e-5 relative.
TEST_F(CudaOps, SoftcapMatchesCpu) {
  uint32_t seed = 400;
  for (int64_t n : {1, 3, 17, 257, 262144 + 7}) {
    SCOPED_TRACE("n=" + std::to_string(n));
    auto x = random_floats(size_t(n), seed++, -200.0f, 200.0f);
    auto ref = x;
    cpu::softcap(ref.data(), n, 30.0f);
    auto dx = upload(x);
    softcap({.x = dx.data(), .n = n, .cap = 30.0f});
    auto out = dx.to_host();
    for (size_t i = 0; i < size_t(n); ++i)
      ASSERT_LE(std::fabs(out[i] - ref[i]), 1e-5f * std::fabs(ref[i]) + 1e-30f) << "element " << i << " x " << x[i];
  }
}

// f32 -> bf16 must be bitwise ug::f32_to_bf16 (round to nearest even) on every non-NaN input.
TEST_F(CudaOps, ToBf16IsBitwiseRoundNearestEven) {
  auto x = random_floats(100003, 500, -1e4f, 1e4f);
  const float specials[] = {0.0f,
                            -0.0f,
                            1.0f,
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::denorm_min(),
                            std::numeric_limits<float>::max(),
                            1.00390625f /* tie: 1 + 2^-8 */,
                            1.01171875f /* tie, odd below */};
  x.insert(x.end(), std::begin(specials), std::end(specials));
  auto dx = upload(x);
  DeviceBuffer<uint16_t> db(x.size());
  to_bf16({.src = dx.data(), .dst = db.data(), .n = int64_t(x.size())});
  auto b = db.to_host();
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(b[i], f32_to_bf16(x[i])) << "element " << i << " = " << x[i];
}

// ---------------------------------------------------------------- split GEMM
// The two-term split against the CPU's f32 x bf16 matmul on the *unrounded* activations: hi + lo carries 16
// significant bits of x, so the product's error is ~2^-17 relative per term plus f32 summation
// (k * 2^-23 * sum|x w|): allowed 2^-15 * sum|x w| + k * 2^-23 * sum|x w|.
// Also over k slices (k_slices: 0 = chosen from the shape, 1 = none, 4 / 5 forced): the sum order changes, not the
// bound.
TEST_F(CudaOps, SplitGemmIsF32Faithful) {
  Gemm gemm;
  uint32_t seed = 900;
  for (int64_t m : {9, 64}) {
    for (auto [n, k, slices] : {std::tuple<int64_t, int64_t, int64_t>{33, 1000, 0},
                                {33, 1000, 5},
                                {3840, 3840, 0},
                                {3840, 3840, 1},
                                {200, 3840, 4}}) {
      SCOPED_TRACE("m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k) +
                   " k_slices=" + std::to_string(slices));
      auto x = random_floats(size_t(m * k), seed++);
      auto wb = to_bf16_host(random_floats(size_t(n * k), seed++, -0.1f, 0.1f));
      std::vector<float> ref(size_t(m * n));
      cpu::matmul_reference(x.data(), m, MatrixRef{wb.data(), DType::BF16, n, k}, ref.data());
      auto dx = upload(x);
      auto dw = upload(wb);
      DeviceBuffer<float> dy(size_t(m * n));
      poison(dy);
      gemm.run_f32(
          {.w = dw.data(), .x = dx.data(), .y = dy.data(), .m = m, .n = n, .k = k, .split = true, .k_slices = slices});
      auto y = dy.to_host();
      int bad = 0;
      for (int64_t t = 0; t < m; ++t) {
        for (int64_t o = 0; o < n; o += 7) {
          double mag = 0;
          for (int64_t i = 0; i < k; ++i)
            mag += std::fabs(double(x[size_t(t * k + i)]) * bf16_to_f32(wb[size_t(o * k + i)]));
          const size_t e = size_t(t * n + o);
          const double d = std::fabs(double(y[e]) - ref[e]);
          if (!(d <= (std::ldexp(1.0, -15) + double(k) * std::ldexp(1.0, -23)) * mag) && bad++ < 5)
            ADD_FAILURE() << "y[" << t << ", " << o << "]: cuda " << y[e] << " cpu " << ref[e] << " (sum|xw| " << mag
                          << ")";
        }
      }
    }
  }
}

// run_chunks leaves the partial outputs that run_f32 sums: summed in chunk order they are run_f32's result, bit for
// bit, whether run_chunks rounds the f32 input itself or takes bf16 terms written before (to_bf16 / to_bf16_split,
// standing in for the kernels that write them in a decoder step).
TEST_F(CudaOps, RunChunksLeavesThePartialsRunF32Sums) {
  Gemm gemm;
  uint32_t seed = 950;
  for (auto [m, n, k, split, slices] : {std::tuple<int64_t, int64_t, int64_t, bool, int64_t>{9, 33, 1000, true, 5},
                                        // decode_gemm (sm_90a) up to 64 rows: terms summed in it, slices left
                                        {64, 3840, 3840, true, 0},
                                        {8, 3840, 3840, true, 0},
                                        {48, 68 * 256, 1024, true, 0},  // a weight that fills the SMs: one slice
                                        {64, 3840, 15360, true, 0},
                                        {7, 200, 64, false, 1},
                                        {130, 3840, 15360, false, 0}}) {
    SCOPED_TRACE("m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k) +
                 " split=" + std::to_string(split) + " k_slices=" + std::to_string(slices));
    auto dx = upload(random_floats(size_t(m * k), seed++));
    auto dw = upload(to_bf16_host(random_floats(size_t(n * k), seed++, -0.1f, 0.1f)));
    DeviceBuffer<uint16_t> terms(size_t((split ? 2 : 1) * m * k));
    if (split)
      to_bf16_split({.src = dx.data(), .hi = terms.data(), .lo = terms.data() + m * k, .n = m * k});
    else
      to_bf16({.src = dx.data(), .dst = terms.data(), .n = m * k});
    DeviceBuffer<float> ref(size_t(m * n)), from_f32(size_t(m * n)), from_terms(size_t(m * n));
    gemm.run_f32(
        {.w = dw.data(), .x = dx.data(), .y = ref.data(), .m = m, .n = n, .k = k, .split = split, .k_slices = slices});
    const int64_t expect_chunks = Gemm::chunks_of(m, n, k, split, slices);
    using Input = std::tuple<const float*, const uint16_t*, DeviceBuffer<float>*>;  // x or x_bf16, and the sum
    for (auto [x, x_bf16, dst] : {Input{dx.data(), nullptr, &from_f32}, Input{nullptr, terms.data(), &from_terms}}) {
      const F32Chunks c = gemm.run_chunks(
          {.w = dw.data(), .x = x, .x_bf16 = x_bf16, .m = m, .n = n, .k = k, .split = split, .k_slices = slices});
      EXPECT_EQ(c.chunks, expect_chunks);
      EXPECT_EQ(c.stride, m * n);
      sum_chunks({.src = c.data, .dst = dst->data(), .n = m * n, .chunks = c.chunks});
    }
    const auto want = ref.to_host();
    EXPECT_EQ(from_f32.to_host(), want);
    EXPECT_EQ(from_terms.to_host(), want);
  }
}

// ---------------------------------------------------------------- GEMM
// Oracle: cpu::matmul_reference (double accumulation) on the bf16-rounded activations and the bf16 weight.
// A product of two bf16 values is exact in f32, so the GPU's only error is f32 summation (in whatever order
// and split cuBLASLt picks): |err| <= gamma_K * sum_k |x_k w_k| with gamma_K ~ K * u. Allowed per element:
// K * 2^-23 * sum|x_k w_k| (u doubled for adders that truncate); for K = 3840 that is 4.6e-4 of the
// magnitude sum. Norm-wise ||y - ref|| / ||ref|| must stay <= 1e-3 as well (typical ~1e-7).
TEST_F(CudaOps, GemmMatchesCpuReference) {
  Gemm gemm;
  uint32_t seed = 600;
  size_t cublas_shapes = 0;  // the rest run on decode_gemm (up to 64 rows, sm_90a), which plans nothing
  for (int64_t m : {1, 7, 64}) {
    for (int64_t n : {33, 3840}) {
      for (int64_t k : {64, 1000, 3840}) {
        SCOPED_TRACE("m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k));
        cublas_shapes += Gemm::takes_decode_gemm(m, n, k, 0) ? 0 : 1;
        auto x = random_floats(size_t(m * k), seed++);
        auto w = random_floats(size_t(n * k), seed++, -0.1f, 0.1f);
        auto wb = to_bf16_host(w);
        std::vector<float> xr(x.size());
        for (size_t i = 0; i < x.size(); ++i) xr[i] = round_to_bf16(x[i]);
        std::vector<float> ref(static_cast<size_t>(m * n));
        cpu::matmul_reference(xr.data(), m, MatrixRef{wb.data(), DType::BF16, n, k}, ref.data());

        auto dx = upload(x);
        auto dw = upload(wb);
        DeviceBuffer<float> dy(static_cast<size_t>(m * n));
        poison(dy);
        gemm.run_f32({.w = dw.data(), .x = dx.data(), .y = dy.data(), .m = m, .n = n, .k = k});
        auto y = dy.to_host();
        double err2 = 0, ref2 = 0;
        int bad = 0;
        for (int64_t t = 0; t < m; ++t) {
          for (int64_t o = 0; o < n; ++o) {
            double mag = 0;
            for (int64_t i = 0; i < k; ++i)
              mag += std::fabs(double(xr[size_t(t * k + i)]) * bf16_to_f32(wb[size_t(o * k + i)]));
            const size_t e = size_t(t * n + o);
            const double d = double(y[e]) - ref[e];
            err2 += d * d;
            ref2 += double(ref[e]) * ref[e];
            if (!(std::fabs(d) <= double(k) * std::ldexp(1.0, -23) * mag + 1e-30) && bad++ < 5)
              ADD_FAILURE() << "y[" << t << ", " << o << "]: cuda " << y[e] << " cpu " << ref[e] << " (sum|xw| " << mag
                            << ")";
          }
        }
        EXPECT_LE(std::sqrt(err2 / ref2), 1e-3);
      }
    }
  }
  EXPECT_EQ(gemm.cached_plans(), cublas_shapes);
  // A second call of a planned shape reuses its plan.
  DeviceBuffer<uint16_t> w(33 * 64), x(64);
  DeviceBuffer<float> y(33);
  UG_CUDA_CHECK(cudaMemset(w.data(), 0, w.bytes()));
  UG_CUDA_CHECK(cudaMemset(x.data(), 0, x.bytes()));
  gemm.run({.w = w.data(), .x = x.data(), .y = y.data(), .m = 1, .n = 33, .k = 64});
  EXPECT_EQ(gemm.cached_plans(), cublas_shapes);
}

// A prefill-sized product with a tuning file: its choice is timed once, kept (one line for its row class), read back
// by the next Gemm (the same algorithm: the same bits) and shared by another row count of that class; the output
// matches the CPU oracle as the heuristic's does.
TEST_F(CudaOps, TunedGemmKeepsItsChoiceForTheNextStart) {
  ug::test::TempDir dir;
  const std::string path = dir.file("gemm-tuning.tsv");
  const int64_t m = 1100, same_class = 1400, n = 512, k = 1024;  // row class 1536
  ASSERT_GE(m, Gemm::kTunedRows);
  auto x = random_floats(size_t(same_class * k), 71);
  auto wb = to_bf16_host(random_floats(size_t(n * k), 72, -0.1f, 0.1f));
  std::vector<float> xr(size_t(m * k));
  for (size_t i = 0; i < xr.size(); ++i) xr[i] = round_to_bf16(x[i]);
  std::vector<float> ref(size_t(m * n));
  cpu::matmul_reference(xr.data(), m, MatrixRef{wb.data(), DType::BF16, n, k}, ref.data());
  auto dx = upload(x);
  auto dw = upload(wb);
  const auto product = [&](Gemm& gemm, int64_t rows) {
    DeviceBuffer<float> dy(size_t(rows * n));
    poison(dy);
    gemm.run_f32({.w = dw.data(), .x = dx.data(), .y = dy.data(), .m = rows, .n = n, .k = k});
    return dy.to_host();
  };
  const auto lines = [&] {
    std::ifstream in(path);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  };
  Gemm first;
  EXPECT_TRUE(first.use_tuning_file(path).empty());
  const std::vector<float> y1 = product(first, m);
  double err2 = 0, ref2 = 0;
  for (size_t e = 0; e < ref.size(); ++e) {
    err2 += (double(y1[e]) - ref[e]) * (double(y1[e]) - ref[e]);
    ref2 += double(ref[e]) * ref[e];
  }
  EXPECT_LE(std::sqrt(err2 / ref2), 1e-4);
  ASSERT_EQ(lines().size(), 1u);
  EXPECT_NE(lines()[0].find("\t1536\t512\t1024\t1\t"), std::string::npos) << lines()[0];

  Gemm next;
  EXPECT_TRUE(next.use_tuning_file(path).empty());
  EXPECT_EQ(product(next, m), y1) << "the kept algorithm must give the same bits";
  product(next, same_class);  // reads the class's choice, times nothing
  EXPECT_EQ(lines().size(), 1u);
}

// decode_gemm's k slices (host code: runs without a GPU): as many as keep the blocks of 256 weight rows within one
// wave of 132, each slice at least 4 blocks of 64 columns and k in whole blocks per slice.
TEST(DecodeGemmSlices, FillOneWaveInWholeBlocks) {
  EXPECT_EQ(decode_gemm_slices(64, 3840, 4096), 8);      // o: 15 tiles x 8
  EXPECT_EQ(decode_gemm_slices(64, 8192, 3840), 4);      // sliding q/k/v: 32 x 4
  EXPECT_EQ(decode_gemm_slices(64, 9216, 3840), 3);      // 36 tiles: 3 slices of 20 blocks (4 would be 144 blocks)
  EXPECT_EQ(decode_gemm_slices(64, 30720, 3840), 1);     // gate/up: 120 tiles
  EXPECT_EQ(decode_gemm_slices(64, 3840, 15360), 8);     // down
  EXPECT_EQ(decode_gemm_slices(16, 256, 64), 1);         // one 64-column block cannot be sliced
  EXPECT_EQ(decode_gemm_slices(16, 256, 64 * 40), 10);   // at least 4 blocks per slice
  EXPECT_EQ(decode_gemm_slices(16, 256, 3840 * 4), 60);  // 240 blocks: 120 slices would be 2 blocks each
  EXPECT_EQ(decode_gemm_slices(64, 66 * 256, 3840), 2);
}

// decode_gemm (wgmma, sm_90a) against the same oracle: each k slice's chunk summed in slice order (as the next
// kernel does: sum_chunks), two-term activations summed in the kernel, token counts around its N sizes (16 / 32 /
// 64) and past them (rows zero-filled), several k blocks per slice, and slices that do not fill a wave. The same
// call again gives the same bits.
TEST_F(CudaOps, DecodeGemmMatchesCpuReference) {
  if (!wgmma_available()) GTEST_SKIP() << "no sm_90a device";
  uint32_t seed = 900;
  for (int64_t m : {1, 5, 16, 33, 64}) {
    for (auto [n, k, slices] : {std::tuple<int64_t, int64_t, int64_t>{256, 64, 1},
                                {768, 320, 1},
                                {512, 3840, 4},
                                {768, 64 * 48, 16},
                                {256, 64 * 12, 3}}) {
      for (int terms : {1, 2}) {
        SCOPED_TRACE("m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k) +
                     " slices=" + std::to_string(slices) + " terms=" + std::to_string(terms));
        ASSERT_TRUE(decode_gemm_supports(m, n, k, slices));
        const auto xb = to_bf16_host(random_floats(size_t(terms * m * k), seed++));
        const auto wb = to_bf16_host(random_floats(size_t(n * k), seed++, -0.1f, 0.1f));
        std::vector<float> xf(xb.size());
        for (size_t i = 0; i < xb.size(); ++i) xf[i] = bf16_to_f32(xb[i]);
        auto dx = upload(xb);
        auto dw = upload(wb);
        DeviceBuffer<float> chunks(size_t(slices * m * n)), again(size_t(slices * m * n)), dy(size_t(m * n));
        poison(chunks);
        for (DeviceBuffer<float>* out : {&chunks, &again})
          decode_gemm({.w = dw.data(),
                       .x = dx.data(),
                       .y = out->data(),
                       .m = m,
                       .n = n,
                       .k = k,
                       .slices = slices,
                       .terms = terms});
        EXPECT_EQ(again.to_host(), chunks.to_host());
        sum_chunks({.src = chunks.data(), .dst = dy.data(), .n = m * n, .chunks = slices});
        const auto y = dy.to_host();
        // The oracle: x · wᵀ over all of k, terms added.
        std::vector<double> want(size_t(m * n), 0.0), mag(size_t(m * n), 0.0);
        std::vector<float> xs(size_t(m * k));
        for (int term = 0; term < terms; ++term) {
          std::copy(xf.begin() + term * m * k, xf.begin() + (term + 1) * m * k, xs.begin());
          std::vector<float> ref(size_t(m * n));
          cpu::matmul_reference(xs.data(), m, MatrixRef{wb.data(), DType::BF16, n, k}, ref.data());
          for (int64_t r = 0; r < m; ++r)
            for (int64_t o = 0; o < n; ++o) {
              want[size_t(r * n + o)] += ref[size_t(r * n + o)];
              for (int64_t i = 0; i < k; ++i)
                mag[size_t(r * n + o)] += std::fabs(double(xs[size_t(r * k + i)]) * bf16_to_f32(wb[size_t(o * k + i)]));
            }
        }
        int bad = 0;
        for (int64_t e = 0; e < m * n; ++e) {
          const double got = y[size_t(e)], d = got - want[size_t(e)];
          if (!(std::fabs(d) <= double(terms * k) * std::ldexp(1.0, -23) * mag[size_t(e)] + 1e-30) && bad++ < 5)
            ADD_FAILURE() << "y[" << e / n << ", " << e % n << "]: cuda " << got << " cpu " << want[size_t(e)];
        }
      }
    }
  }
  DeviceBuffer<float> f(64);
  const std::string msg = error_of([&] {
    decode_gemm({.w = reinterpret_cast<const uint16_t*>(f.data()),
                 .x = reinterpret_cast<const uint16_t*>(f.data()),
                 .y = f.data(),
                 .m = 8,
                 .n = 256,
                 .k = 512,
                 .slices = 3});
  });
  EXPECT_NE(msg.find("decode_gemm: m 8, n 256, k 512, slices 3: needs m 1..64"), std::string::npos) << msg;
}

// ---------------------------------------------------------------- errors

TEST_F(CudaOps, UnsupportedArgumentsAreErrorsNamingThem) {
  DeviceBuffer<float> f(4096);
  DeviceBuffer<uint16_t> h(4096);
  DeviceBuffer<int64_t> pos(4);
  Gemm gemm;
  auto msg = error_of([&] { gemm.run({.w = h.data(), .x = h.data(), .y = f.data(), .m = 1, .n = 4, .k = 100}); });
  EXPECT_NE(msg.find("cuda gemm: k 100 is not a multiple of 8"), std::string::npos) << msg;
  msg = error_of([&] {
    gemm.run_f32({.w = h.data(), .x = f.data(), .y = f.data() + 2048, .m = 1, .n = 4, .k = 64, .k_slices = 3});
  });
  EXPECT_NE(msg.find("cuda gemm: k_slices 3 must be >= 0 and divide k 64"), std::string::npos) << msg;
  msg = error_of([&] { gemm.run_chunks({.w = h.data(), .x = f.data(), .x_bf16 = h.data(), .m = 1, .n = 4, .k = 64}); });
  EXPECT_NE(msg.find("cuda gemm: exactly one of x and x_bf16 must be set"), std::string::npos) << msg;
  // Slices only where the output tiles leave SMs idle, never below 512 k per slice, and only while the partial
  // outputs stay small next to the weight (m: the rows cuBLASLt sees).
  EXPECT_EQ(Gemm::auto_k_slices(16, 3840, 15360), 8);
  EXPECT_EQ(Gemm::auto_k_slices(128, 3840, 15360), 2);
  EXPECT_EQ(Gemm::auto_k_slices(128, 3840, 4096), 1);
  EXPECT_EQ(Gemm::auto_k_slices(128, 30720, 3840), 1);
  EXPECT_EQ(Gemm::auto_k_slices(4096, 3840, 3840), 1);
  msg = error_of([&] {
    rope({.x = f.data(), .positions = pos.data(), .inv_freq = f.data(), .n_tokens = 4, .n_heads = 1, .head_dim = 7});
  });
  EXPECT_NE(msg.find("cuda rope: head_dim 7 must be even"), std::string::npos) << msg;
  msg = error_of(
      [&] { rms_norm({.x = f.data(), .out = f.data(), .weight_type = WeightType::BF16, .rows = 1, .dim = 64}); });
  EXPECT_NE(msg.find("cuda rms_norm: weight pointer and weight_type disagree"), std::string::npos) << msg;
  msg = error_of([&] { softcap({.x = f.data(), .n = 16, .cap = 0.0f}); });
  EXPECT_NE(msg.find("cuda softcap: cap 0"), std::string::npos) << msg;
  // A failing CUDA call names file:line, the call and CUDA's error string.
  msg = error_of([&] { UG_CUDA_CHECK(cudaMemcpy(f.data(), nullptr, 1ull << 40, cudaMemcpyHostToDevice)); });
  EXPECT_NE(msg.find("cuda_ops_test.cc:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cudaMemcpy(f.data(), nullptr"), std::string::npos) << msg;
}

// ---------------------------------------------------------------- throughput (scripts/gpu_check.sh)
// Disabled in ordinary runs; gpu_check.sh runs it with --gtest_also_run_disabled_tests and reads the lines
// starting "GEMM". Weights rotate over enough copies that every call streams them from HBM, not L2.
// split_slices >= 0: run_f32 with the two-term split and that k_slices (a decode step's product), else run.
double time_gemm_us(Gemm& gemm, int64_t m, int64_t n, int64_t k, int copies, int64_t split_slices = -1) {
  std::vector<DeviceBuffer<uint16_t>> ws;
  auto host_w = to_bf16_host(random_floats(size_t(n * k), 900, -0.1f, 0.1f));
  for (int c = 0; c < copies; ++c) ws.push_back(upload(host_w));
  auto dx = upload(to_bf16_host(random_floats(size_t(m * k), 901)));
  auto dxf = upload(random_floats(size_t(m * k), 902));
  DeviceBuffer<float> dy(static_cast<size_t>(m * n));
  auto call = [&](int i) {
    const uint16_t* w = ws[size_t(i % copies)].data();
    if (split_slices >= 0)
      gemm.run_f32(
          {.w = w, .x = dxf.data(), .y = dy.data(), .m = m, .n = n, .k = k, .split = true, .k_slices = split_slices});
    else
      gemm.run({.w = w, .x = dx.data(), .y = dy.data(), .m = m, .n = n, .k = k});
  };
  for (int i = 0; i < 10; ++i) call(i);
  cudaEvent_t start, stop;
  UG_CUDA_CHECK(cudaEventCreate(&start));
  UG_CUDA_CHECK(cudaEventCreate(&stop));
  constexpr int kBatch = 50;
  std::vector<double> per_call;
  for (int rep = 0; rep < 15; ++rep) {
    UG_CUDA_CHECK(cudaEventRecord(start));
    for (int i = 0; i < kBatch; ++i) call(rep * kBatch + i);
    UG_CUDA_CHECK(cudaEventRecord(stop));
    UG_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    UG_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    per_call.push_back(1e3 * ms / kBatch);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(per_call.begin(), per_call.end());
  return per_call[per_call.size() / 2];
}

TEST_F(CudaOps, DISABLED_GemmThroughput) {
  constexpr double kPeakTflops = 743.0, kPeakGBs = 4240.0;  // measured ceilings (brief / KINDS.md)
  Gemm gemm;
  {
    const int64_t m = 2048, n = 3840, k = 3840;
    const double us = time_gemm_us(gemm, m, n, k, 4);
    const double tflops = 2.0 * m * n * k / (us * 1e-6) / 1e12;
    std::printf("GEMM m=%lld n=%lld k=%lld: %.1f us, %.1f TFLOP/s = %.3f of %.0f TFLOP/s\n", (long long)m, (long long)n,
                (long long)k, us, tflops, tflops / kPeakTflops, kPeakTflops);
  }
  for (int64_t m : {1, 8}) {
    const int64_t n = 3840, k = 3840;
    const double us = time_gemm_us(gemm, m, n, k, 32);  // 32 x 29.5 MB of weights >> 60 MB L2
    const double bytes = 2.0 * n * k + 2.0 * m * k + 4.0 * m * n;
    const double gbs = bytes / (us * 1e-6) / 1e9;
    std::printf("GEMM m=%lld n=%lld k=%lld: %.2f us, %.0f GB/s = %.3f of %.0f GB/s\n", (long long)m, (long long)n,
                (long long)k, us, gbs, gbs / kPeakGBs, kPeakGBs);
  }
  // Decode steps of the 12B at batch 8 / 32 / 64 (two-term split: 2x the rows): the weight matrices of a layer
  // (fused qkv of a sliding layer, o, fused gate/up, down), with the chosen k slices, none, and a sweep at b64.
  for (int64_t m : {8, 32, 64}) {
    for (auto [n, k] : {std::pair<int64_t, int64_t>{8192, 3840}, {3840, 4096}, {30720, 3840}, {3840, 15360}}) {
      const double weight_bytes = 2.0 * double(n) * double(k);
      const int copies = std::max(2, int(std::ceil(200e6 / weight_bytes)));
      for (int64_t slices : {0, 1, 2, 4, 8, 16}) {
        if (m != 64 && slices > 1) continue;  // the sweep at batch 64 only
        const double us = time_gemm_us(gemm, m, n, k, copies, slices);
        const int64_t chosen = slices > 0 ? slices : Gemm::auto_k_slices(2 * m, n, k);
        std::printf(
            "GEMM split decode b%lld n=%lld k=%lld k_slices %lld: %.2f us, weights at %.0f GB/s = %.3f of %.0f\n",
            (long long)m, (long long)n, (long long)k, (long long)chosen, us, weight_bytes / us / 1e3,
            weight_bytes / us / 1e3 / kPeakGBs, kPeakGBs);
      }
    }
  }
}

}  // namespace
}  // namespace ug::cuda
