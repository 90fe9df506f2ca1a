// cuda::top_logits_rows (the top-k candidates of a sampled decode step, found on the GPU) vs its oracle
// ug::select_top_logits: a 262k vocabulary and odd sizes, k from 1 to the whole row, ties at the k-th value, -inf,
// -0 / +0, excluded ids (listed twice, holding a NaN), NaN / +inf rows, rows skipped with k = 0, and candidates
// beyond the capacity. Skips without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <utility>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/ops.h"
#include "cuda/cuda_test_util.h"
#include "model/decoder_backend.h"

namespace ug::cuda {
namespace {

using test::error_of;
using test::random_floats;
using test::upload;

class CudaTopLogits : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!device_available()) GTEST_SKIP() << "no CUDA device";
  }
};

struct RowCase {
  int32_t k = 0;
  std::vector<int32_t> excluded;
};

// Runs the kernel over rows of x (n each) and checks every row against the oracle; returns the counts.
std::vector<int32_t> check_rows(const std::vector<float>& x, int64_t n, const std::vector<RowCase>& cases,
                                int64_t capacity) {
  const int64_t rows = int64_t(cases.size());
  std::vector<int32_t> k, at{0}, ids;
  int64_t most = 0;
  for (const auto& c : cases) {
    k.push_back(c.k);
    ids.insert(ids.end(), c.excluded.begin(), c.excluded.end());
    at.push_back(int32_t(ids.size()));
    most = std::max(most, int64_t(c.excluded.size()));
  }
  if (ids.empty()) ids.push_back(0);
  auto dx = upload(x);
  auto dk = upload(k), dat = upload(at), dids = upload(ids);
  DeviceBuffer<int32_t> out(static_cast<size_t>(rows * (1 + 2 * capacity)));
  DeviceBuffer<int32_t> scratch(static_cast<size_t>(top_logits_scratch_ints(rows, n, capacity)));
  test::poison(out);
  test::poison(scratch);
  top_logits_rows({.x = dx.data(),
                   .k = dk.data(),
                   .out = out.data(),
                   .scratch = scratch.data(),
                   .rows = rows,
                   .n = n,
                   .capacity = capacity,
                   .excluded_at = dat.data(),
                   .excluded_ids = dids.data(),
                   .max_excluded = most});
  const auto got = out.to_host();
  std::vector<int32_t> counts;
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t* row = got.data() + r * (1 + 2 * capacity);
    counts.push_back(row[0]);
    if (cases[size_t(r)].k == 0) {
      EXPECT_EQ(row[0], 0) << "row " << r << " (skipped)";
      continue;
    }
    TopLogits want{.k = cases[size_t(r)].k};
    select_top_logits(x.data() + r * n, n, cases[size_t(r)].excluded, want);
    if (want.bad) {
      EXPECT_EQ(row[0], -1) << "row " << r;
      continue;
    }
    if (int64_t(want.ids.size()) > capacity) {
      EXPECT_EQ(row[0], -2) << "row " << r << ": " << want.ids.size() << " candidates, room for " << capacity;
      continue;
    }
    EXPECT_EQ(row[0], int32_t(want.ids.size())) << "row " << r << " k " << cases[size_t(r)].k;
    if (row[0] != int32_t(want.ids.size())) continue;
    std::vector<std::pair<int32_t, float>> pairs;
    for (int32_t i = 0; i < row[0]; ++i) pairs.push_back({row[1 + i], std::bit_cast<float>(row[1 + capacity + i])});
    std::sort(pairs.begin(), pairs.end());
    for (size_t i = 0; i < pairs.size(); ++i) {
      EXPECT_EQ(pairs[i].first, want.ids[i]) << "row " << r << " candidate " << i;
      EXPECT_EQ(std::bit_cast<uint32_t>(pairs[i].second), std::bit_cast<uint32_t>(want.values[i]))
          << "row " << r << " candidate " << i;
    }
  }
  return counts;
}

TEST_F(CudaTopLogits, MatchesTheReferenceOverAFullVocabulary) {
  const int64_t n = 262144;
  const std::vector<RowCase> cases{{1, {}}, {64, {}}, {64, {5, 9, 5}}, {1024, {}},
                                   {0, {}}, {40, {}}, {64, {}},        {3, {}}};
  const int64_t rows = int64_t(cases.size());
  auto x = random_floats(size_t(rows * n), 11, -30.0f, 30.0f);
  float* row2 = x.data() + 2 * n;
  row2[5] = 1000.0f;               // excluded (twice): never a candidate
  row2[9] = std::nanf("");         // excluded: no error
  float* row5 = x.data() + 5 * n;  // coarse values (6000 of them): ties at the 40th
  for (int64_t i = 0; i < n; ++i) row5[i] = std::round(row5[i] * 100.0f) / 100.0f;
  float* row6 = x.data() + 6 * n;  // a peaked row with a -inf tail
  for (int64_t i = 0; i < n; ++i) row6[i] = i % 3 ? -INFINITY : row6[i];
  x[size_t(7 * n + 12345)] = INFINITY;  // +inf: the row's error
  const auto counts = check_rows(x, n, cases, 2048);
  EXPECT_EQ(counts[0], 1);
  EXPECT_EQ(counts[1], 64);
  EXPECT_GT(counts[5], 40);  // the ties are kept
  EXPECT_EQ(counts[7], -1);
}

TEST_F(CudaTopLogits, OddSizesFewFiniteValuesSignedZerosAndOverflow) {
  // n = 7 with k above the finite count; -0 / +0 at the boundary; everything masked; k = n.
  std::vector<float> x{1.0f,      -INFINITY, 0.0f,      -0.0f,     2.0f,      -INFINITY, 0.0f,       //
                       1.0f,      -INFINITY, 0.0f,      -0.0f,     2.0f,      -INFINITY, 0.0f,       //
                       -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY,  //
                       3.0f,      1.0f,      2.0f,      1.0f,      0.5f,      1.0f,      -1.0f};
  auto counts = check_rows(x, 7, {{6, {}}, {3, {}}, {3, {}}, {7, {}}}, 7);
  EXPECT_EQ(counts[0], 5);
  EXPECT_EQ(counts[1], 5);  // 2, 1, then 0, -0, 0 tie
  EXPECT_EQ(counts[2], 0);  // every logit masked
  EXPECT_EQ(counts[3], 7);
  // 9000 equal logits with k = 2: every one is a candidate, far beyond a room of 128, within one chunk (-2 from
  // the chunk kernel) and across chunks (a row of 200 ties per 4096-logit chunk: -2 from the merge).
  std::vector<float> flat(9001, 4.0f);
  flat[0] = 9.0f;
  counts = check_rows(flat, 9001, {{2, {}}}, 128);
  EXPECT_EQ(counts[0], -2);
  std::vector<float> spread(3 * 4096, -1.0f);
  for (size_t i = 0; i < spread.size(); i += 4096)
    for (size_t j = 0; j < 100; ++j) spread[i + j * 7] = 2.0f;
  const int64_t spread_n = int64_t(spread.size());
  spread.insert(spread.end(), spread.begin(), spread.end());  // two rows
  counts = check_rows(spread, spread_n, {{3, {}}, {300, {}}}, 256);
  EXPECT_EQ(counts[0], -2);  // 100 ties at 2.0 per chunk fit; their 300 together do not
  EXPECT_EQ(counts[1], -2);  // k = 300 takes every -1.0 of a chunk too
}

// Run by scripts/gpu_check.sh (--gtest_also_run_disabled_tests): the selection's time per step for a batch of
// sampled rows of a 262k vocabulary (softcapped-looking logits).
TEST_F(CudaTopLogits, DISABLED_Throughput) {
  const int64_t n = 262144, capacity = 128;
  for (int64_t rows : {int64_t(1), int64_t(8), int64_t(64)}) {
    auto x = random_floats(size_t(rows * n), 3, -30.0f, 30.0f);
    for (float& v : x) v = 30.0f * std::tanh(v / 30.0f);
    std::vector<int32_t> k(static_cast<size_t>(rows), 64);
    auto dx = upload(x);
    auto dk = upload(k);
    DeviceBuffer<int32_t> out(static_cast<size_t>(rows * (1 + 2 * capacity)));
    DeviceBuffer<int32_t> scratch(static_cast<size_t>(top_logits_scratch_ints(rows, n, capacity)));
    const TopLogitsRowsParams p{.x = dx.data(),
                                .k = dk.data(),
                                .out = out.data(),
                                .scratch = scratch.data(),
                                .rows = rows,
                                .n = n,
                                .capacity = capacity};
    top_logits_rows(p);
    cudaEvent_t start, stop;
    UG_CUDA_CHECK(cudaEventCreate(&start));
    UG_CUDA_CHECK(cudaEventCreate(&stop));
    const int reps = 50;
    UG_CUDA_CHECK(cudaEventRecord(start));
    for (int r = 0; r < reps; ++r) top_logits_rows(p);
    UG_CUDA_CHECK(cudaEventRecord(stop));
    UG_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    UG_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    std::printf("TOPK rows=%lld n=%lld k=64: %.1f us per call\n", (long long)rows, (long long)n, 1000.0 * ms / reps);
    EXPECT_EQ(out.to_host()[0], 64);
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
  }
}

TEST_F(CudaTopLogits, BadArgumentsAreErrorsNamingThem) {
  DeviceBuffer<float> x(16);
  DeviceBuffer<int32_t> k(1), out(64), scratch(64);
  EXPECT_NE(error_of([&] {
              top_logits_rows({.x = x.data(), .k = k.data(), .rows = 1, .n = 16, .capacity = 4});
            }).find("scratch must be set"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              top_logits_rows({.x = x.data(),
                               .k = k.data(),
                               .out = out.data(),
                               .scratch = scratch.data(),
                               .rows = 1,
                               .n = 16,
                               .capacity = 17});
            }).find("capacity 17"),
            std::string::npos);
}

}  // namespace
}  // namespace ug::cuda
