// CUDA attention, KV append and gemv vs their CPU oracles (cpu::attention_batch on bf16-rounded keys and
// values, KvCache::store, cpu::matmul) over odd shapes: head dims 16 / 64 / 256 / 512, GQA and MQA, ring
// caches that wrapped (also smaller than the chunk), linear caches, bidirectional blocks, several sequences
// of different lengths in one call, split and unsplit keys, exact (two-term) and bf16 queries. Skips
// without a GPU (scripts/gpu_check.sh runs it on the H200).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <span>
#include <tuple>
#include <vector>

#include "backend/cpu/matmul.h"
#include "backend/cpu/ops.h"
#include "backend/cuda/attention.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/gemv.h"
#include "backend/cuda/ops.h"
#include "core/bf16.h"
#include "core/thread_pool.h"
#include "cuda/cuda_test_util.h"
#include "model/decoder_backend.h"

namespace ug::cuda {
namespace {

class CudaAttention : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!device_available()) GTEST_SKIP() << "no CUDA device";
  }
};

// Inputs in [-1.5, 1.5] (the tolerances below assume it).
std::vector<float> random_floats(size_t n, uint32_t seed) { return test::random_floats(n, seed, -1.5f, 1.5f); }

using test::to_bf16_host;
using test::upload;

// One sequence of a test step: cache state and the chunk it adds.
struct SeqSpec {
  int64_t start;                   // tokens already in the cache
  int64_t n;                       // rows this step
  int64_t capacity;                // ring capacity, 0 = linear
  std::vector<int32_t> block_ids;  // [n] or empty
};

struct AttnCase {
  int64_t heads, kv_heads, head_dim, window;
  std::vector<SeqSpec> seqs;
  int64_t max_splits;
};

std::vector<float> rounded_to_bf16(std::vector<float> v) {
  for (auto& x : v) x = round_to_bf16(x);
  return v;
}

// A planned attention call: the plan, its tiles and the split scratch on the device.
struct PlannedCall {
  AttentionPlan plan;
  DeviceBuffer<int32_t> tiles;
  DeviceBuffer<float> partial;
  PlannedCall(std::span<const int64_t> seq_rows, int64_t rows, int64_t H, int64_t Hkv, int64_t d, AttentionMode mode,
              int64_t max_keys, int64_t max_splits, bool allow_decode_kernel = true, bool allow_wgmma = true)
      : plan(plan_attention(seq_rows, H, Hkv, d, mode, max_keys, max_splits, allow_decode_kernel, allow_wgmma)),
        tiles(upload(plan.tiles)),
        partial(size_t(std::max<int64_t>(1, attention_partial_floats(plan, rows, H, d)))) {}
  void apply(AttentionParams& p) {
    p.partial = partial.data();
    apply_plan(p, plan, tiles.data());
  }
};

// decode_kernel: let plan_attention pick the decode kernel and the wgmma kernel where it can (false: the mma.sync
// flash kernel always).
void run_case(const AttnCase& c, uint32_t seed, AttentionMode mode, bool decode_kernel) {
  const int64_t H = c.heads, Hkv = c.kv_heads, d = c.head_dim, rs = Hkv * d;
  const bool exact = mode != AttentionMode::Fast;
  const KvType kv = kv_type_of(mode);
  // Exact modes at scale 1 (the harshest: scores ~ sqrt(d)); bf16 queries at the usual 1/sqrt(d).
  const float scale = exact ? 1.0f : 1.0f / std::sqrt(float(d));
  // Fp8 caches hold keys / k_scale (2 here, to test it), rounded to e4m3; the oracle sees those keys at
  // scale x k_scale.
  const float k_scale = kv == KvType::Fp8 ? 2.0f : 1.0f;
  auto stored = [&](std::vector<float> x, float divisor) {
    if (kv == KvType::F32) return x;
    if (kv == KvType::Bf16) return rounded_to_bf16(std::move(x));
    for (auto& e : x) e = test::e4m3_value(test::e4m3_bits(e / divisor));
    return x;
  };
  int64_t rows = 0, max_keys = 1;
  std::vector<int64_t> seq_rows;
  for (const auto& s : c.seqs) {
    rows += s.n;
    max_keys = std::max(max_keys, s.start + s.n);
    seq_rows.push_back(s.n);
  }
  auto q = random_floats(size_t(rows * H * d), seed);
  auto k = random_floats(size_t(rows * rs), seed + 1);
  auto v = random_floats(size_t(rows * rs), seed + 2);
  const auto k_b = stored(k, k_scale), v_b = stored(v, 1.0f);  // what the kernel and the cache hold
  // Caches: slot contents for every position before start (ring slots hold the newest positions).
  std::vector<std::vector<float>> ck, cv;
  std::vector<DeviceBuffer<uint16_t>> dk, dv;
  // A cache's device contents from the values it holds (already rounded as stored).
  auto device_cache = [&](const std::vector<float>& x) {
    if (kv == KvType::Bf16) return upload(to_bf16_host(x));
    std::vector<uint16_t> bits((x.size() * size_t(kv_type_bytes(kv)) + 1) / 2);
    if (kv == KvType::F32) {
      std::memcpy(bits.data(), x.data(), x.size() * sizeof(float));
    } else {
      std::vector<uint8_t> bytes(x.size());
      for (size_t i = 0; i < x.size(); ++i) bytes[i] = test::e4m3_bits(x[i]);
      std::memcpy(bits.data(), bytes.data(), bytes.size());
    }
    return upload(bits);
  };
  std::vector<AttentionSeq> seqs;
  std::vector<int32_t> row_seq, block_last(size_t(rows), -1);
  std::vector<cpu::AttentionParams> calls;
  std::vector<float> want(size_t(rows * H * d), 0.0f);
  int64_t row0 = 0;
  bool blocks = false;
  for (size_t i = 0; i < c.seqs.size(); ++i) {
    const SeqSpec& s = c.seqs[i];
    const int64_t slots = s.capacity > 0 ? s.capacity : s.start + s.n;
    ck.push_back(stored(random_floats(size_t(slots * rs), seed + 10 + uint32_t(i)), k_scale));
    cv.push_back(stored(random_floats(size_t(slots * rs), seed + 20 + uint32_t(i)), 1.0f));
    dk.push_back(device_cache(ck.back()));
    dv.push_back(device_cache(cv.back()));
    seqs.push_back({.cache_k = dk.back().data(),
                    .cache_v = dv.back().data(),
                    .ring_capacity = s.capacity,
                    .row0 = row0,
                    .n_rows = s.n,
                    .chunk_start = s.start});
    for (int64_t r = 0; r < s.n; ++r) row_seq.push_back(int32_t(i));
    for (int64_t r = s.n - 1; r >= 0 && !s.block_ids.empty(); --r) {
      if (s.block_ids[size_t(r)] < 0) continue;
      blocks = true;
      const bool ends = r + 1 == s.n || s.block_ids[size_t(r + 1)] != s.block_ids[size_t(r)];
      block_last[size_t(row0 + r)] = ends ? int32_t(row0 + r) : block_last[size_t(row0 + r + 1)];
    }
    calls.push_back({.q = q.data() + row0 * H * d,
                     .out = want.data() + row0 * H * d,
                     .n_q = s.n,
                     .chunk_start = s.start,
                     .n_heads = H,
                     .n_kv_heads = Hkv,
                     .head_dim = d,
                     .window = c.window,
                     .cache_k = ck.back().data(),
                     .cache_v = cv.back().data(),
                     .ring_capacity = s.capacity,
                     .chunk_k = k_b.data() + row0 * rs,
                     .chunk_v = v_b.data() + row0 * rs,
                     .block_ids = s.block_ids.empty() ? nullptr : s.block_ids.data(),
                     .scale = scale * k_scale});
    row0 += s.n;
  }
  cpu::attention_batch(calls, ThreadPool::global());

  auto dq = upload(q), dkk = upload(k), dvv = upload(v);
  auto dseqs = upload(seqs);
  auto drow = upload(row_seq), dblock = upload(block_last);
  PlannedCall call(seq_rows, rows, H, Hkv, d, mode, max_keys, c.max_splits, decode_kernel, decode_kernel);
  const AttentionPlan& plan = call.plan;
  // The wgmma kernel takes the flash tiles on a Hopper chip where its shapes allow and the longest chunk fills a
  // tile of its rows (128 at d 256, 64 at 512).
  const int64_t most_rows =
      std::max_element(c.seqs.begin(), c.seqs.end(), [](const SeqSpec& a, const SeqSpec& b) { return a.n < b.n; })->n;
  const int64_t wgmma_rows = d == 512 ? 64 : 128;
  const bool wgmma_shape =
      (d == 256 || d == 512) && wgmma_rows % (H / Hkv) == 0 && most_rows > 1 && most_rows * (H / Hkv) >= wgmma_rows;
  EXPECT_EQ(plan.wgmma, decode_kernel && wgmma_available() && wgmma_shape && mode != AttentionMode::ExactF32Kv)
      << "H " << H << " Hkv " << Hkv << " d " << d << " rows " << most_rows << " mode " << int(mode);
  // The decode kernel takes every one-row sequence at head dims 128 / 256 / 512: a tile per 4 (d <= 256), 2 or 1
  // query heads, the most that divide the GQA group; a group that spans tiles only for up to 4 such sequences.
  // More than 4 one-row sequences with 16-head groups at d 256 / 512 (not the f32 cache) take the MQA decode kernel
  // instead, one tile per kv head (in a pure decode step and beside prefill chunks).
  const int64_t G = H / Hkv, tile_heads = G % 4 == 0 && d <= 256 ? 4 : G % 2 == 0 ? 2 : 1;
  const int64_t one_row = std::count_if(c.seqs.begin(), c.seqs.end(), [](const SeqSpec& s) { return s.n == 1; });
  const bool mqa =
      decode_kernel && one_row > 4 && G == 16 && (d == 256 || d == 512) && mode != AttentionMode::ExactF32Kv;
  EXPECT_EQ(plan.mqa, mqa) << "H " << H << " Hkv " << Hkv << " d " << d << " mode " << int(mode);
  const bool supported = (d == 128 || d == 256 || d == 512) && (tile_heads == G || one_row <= 4);
  EXPECT_EQ(plan.n_decode_tiles, mqa                          ? one_row * Hkv
                                 : decode_kernel && supported ? one_row * H / tile_heads
                                                              : 0)
      << "H " << H << " Hkv " << Hkv << " d " << d;
  DeviceBuffer<float> out(size_t(rows * H * d));
  UG_CUDA_CHECK(cudaMemset(out.data(), 0xff, out.bytes()));
  AttentionParams p{.q = dq.data(),
                    .k = dkk.data(),
                    .v = dvv.data(),
                    .out = out.data(),
                    .seqs = dseqs.data(),
                    .block_last = blocks ? dblock.data() : nullptr,
                    .rows = rows,
                    .n_seqs = int64_t(seqs.size()),
                    .n_heads = H,
                    .n_kv_heads = Hkv,
                    .head_dim = d,
                    .window = c.window,
                    .scale = scale,
                    .mode = mode,
                    .k_scale = k_scale};
  call.apply(p);
  attention(p);
  auto got = out.to_host();
  // Outputs are convex combinations of values in [-1.5, 1.5]. Exact: queries and probabilities carry ~16
  // mantissa bits against the same bf16 keys/values, scores up to ~sqrt(d) x 2 at scale 1 move by < 1e-3.
  // bf16 queries/probabilities: 2^-9 relative per term.
  const float tol = exact ? 2e-3f : 2e-2f;
  float worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(got[i] - want[i]));
  EXPECT_LE(worst, tol) << "H " << H << " Hkv " << Hkv << " d " << d << " window " << c.window << " max_splits "
                        << c.max_splits << " (plan: splits " << plan.splits << ", row warps " << plan.row_warps
                        << ", wgmma " << plan.wgmma << ", decode tiles " << plan.n_decode_tiles << " split "
                        << plan.decode_splits << ") mode " << int(mode);

  // KV append: the cache slots afterwards equal KvCache::store's (rounded as the cache type stores them).
  kv_store({.k = dkk.data(),
            .v = dvv.data(),
            .seqs = dseqs.data(),
            .row_seq = drow.data(),
            .rows = rows,
            .row_size = rs,
            .type = kv,
            .k_scale = k_scale});
  row0 = 0;
  for (size_t i = 0; i < c.seqs.size(); ++i) {
    const SeqSpec& s = c.seqs[i];
    for (int64_t t = 0; t < s.n; ++t) {
      if (s.capacity > 0 && t < s.n - s.capacity) continue;
      const int64_t slot = s.capacity > 0 ? (s.start + t) % s.capacity : s.start + t;
      std::copy(k_b.begin() + (row0 + t) * rs, k_b.begin() + (row0 + t + 1) * rs, ck[i].begin() + slot * rs);
      std::copy(v_b.begin() + (row0 + t) * rs, v_b.begin() + (row0 + t + 1) * rs, cv[i].begin() + slot * rs);
    }
    EXPECT_EQ(dk[i].to_host(), device_cache(ck[i]).to_host()) << "seq " << i;
    EXPECT_EQ(dv[i].to_host(), device_cache(cv[i]).to_host()) << "seq " << i;
    row0 += s.n;
  }
}

constexpr AttentionMode kAllModes[] = {AttentionMode::ExactF32Kv, AttentionMode::Exact, AttentionMode::Fast,
                                       AttentionMode::ExactFp8Kv};

void run_case(const AttnCase& c, uint32_t seed, std::span<const AttentionMode> modes = kAllModes) {
  for (AttentionMode mode : modes)
    for (bool decode_kernel : {false, true}) run_case(c, seed, mode, decode_kernel);
}

// The planner alone (host code: runs without a GPU): which kernel a step's decode rows of the full layers (16 heads
// over one kv head, d 512) take, and the MQA kernel's key splits (rounded down to one wave of 132 blocks, at least
// two 32-key steps per split).
TEST(AttentionPlan, MqaDecodeKernelTakesMoreThanFourOneRowSequencesOfSixteenHeads) {
  const auto plan = [](int64_t seqs, AttentionMode mode, int64_t max_keys, bool allow = true, int64_t rows = 1) {
    std::vector<int64_t> seq_rows(size_t(seqs), 1);
    seq_rows.back() = rows;
    return plan_attention(seq_rows, 16, 1, 512, mode, max_keys, 128, allow);
  };
  for (AttentionMode mode : {AttentionMode::Fast, AttentionMode::Exact, AttentionMode::ExactFp8Kv}) {
    SCOPED_TRACE("mode " + std::to_string(int(mode)));
    const AttentionPlan b64 = plan(64, mode, 1025);
    EXPECT_TRUE(b64.mqa);
    EXPECT_EQ(b64.n_tiles(), 64);
    EXPECT_EQ(b64.n_decode_tiles, 64);
    EXPECT_EQ(b64.decode_splits, 2);
    EXPECT_EQ(plan(32, mode, 1025).decode_splits, 4);
    EXPECT_EQ(plan(5, mode, 16385).decode_splits, 26);
    EXPECT_EQ(plan(8, mode, 40).decode_splits, 1);  // 40 keys: one split of two steps
    EXPECT_EQ(plan(200, mode, 1025).decode_splits, 1);
    // Beside a prefill chunk: the one-row sequences on the MQA kernel, unsplit, after the chunk's flash tiles.
    const AttentionPlan mixed = plan(64, mode, 1025, true, 7);
    EXPECT_TRUE(mixed.mqa);
    EXPECT_EQ(mixed.n_decode_tiles, 63);
    EXPECT_EQ(mixed.decode_splits, 1);
    // Up to 4 sequences: the CUDA-core kernel's spanning tiles (8 of 2 heads per sequence).
    const AttentionPlan b4 = plan(4, mode, 1025);
    EXPECT_FALSE(b4.mqa);
    EXPECT_EQ(b4.n_decode_tiles, 32);
    // Not asked for: the flash kernel.
    EXPECT_FALSE(plan(64, mode, 1025, false).mqa);
  }
  EXPECT_FALSE(plan(64, AttentionMode::ExactF32Kv, 1025).mqa);  // the f32 cache: the flash kernel
  // Other groups never take it: the 12B's sliding layers (16 heads over 8, d 256).
  const std::vector<int64_t> rows(64, 1);
  EXPECT_FALSE(plan_attention(rows, 16, 8, 256, AttentionMode::Exact, 1025).mqa);
}

TEST_F(CudaAttention, DecodeRowsAgainstRingAndLinearCaches) {
  for (int64_t splits : {int64_t(1), int64_t(64)}) {
    // Sliding layer shape of the 12B (16 heads over 8 kv heads, d 256), window 40, rings that
    // wrapped.
    run_case({16, 8, 256, 40, {{100, 1, 50, {}}, {7, 1, 50, {}}, {49, 1, 50, {}}}, splits}, 1);
    // Full layer shape (MQA, d 512), linear caches of different lengths.
    run_case({16, 1, 512, 0, {{300, 1, 0, {}}, {1, 1, 0, {}}, {0, 1, 0, {}}}, splits}, 2);
    // The decode kernel's other groups and dims: GQA 4 at d 128 and 256, 2 at d 512, MHA; groups that span tiles
    // (8 at d 256: 2 tiles of 4; 6 at d 128: 3 of 2; 3 at d 512: 3 of 1); long and empty caches (key counts that
    // are not multiples of a warp's step), a ring smaller than the window.
    run_case({8, 2, 128, 0, {{517, 1, 0, {}}, {0, 1, 0, {}}, {63, 1, 0, {}}}, splits}, 11);
    run_case({8, 2, 256, 100, {{411, 1, 100, {}}, {5, 1, 100, {}}}, splits}, 12);
    run_case({4, 2, 512, 0, {{129, 1, 0, {}}, {2, 1, 0, {}}}, splits}, 13);
    run_case({3, 3, 256, 0, {{70, 1, 0, {}}}, splits}, 14);
    run_case({2, 2, 128, 30, {{90, 1, 30, {}}, {31, 1, 30, {}}}, splits}, 15);
    run_case({16, 2, 256, 0, {{200, 1, 0, {}}, {3, 1, 0, {}}}, splits}, 16);
    run_case({12, 2, 128, 50, {{120, 1, 60, {}}}, splits}, 17);
    run_case({6, 2, 512, 0, {{77, 1, 0, {}}, {0, 1, 0, {}}}, splits}, 18);
  }
}

// The MQA decode kernel (more than 4 one-row sequences with 16-head groups): key counts around its 32-key steps and
// split boundaries, an empty cache; d 256 with two kv heads over rings that wrapped; a step with prefill chunks. Its
// own test so that compute-sanitizer can run it alone (and once more with UG_ATTN_MQA_WARPS=16).
TEST_F(CudaAttention, MqaDecodeKernel) {
  for (int64_t splits : {int64_t(1), int64_t(3), int64_t(64)}) {
    const std::vector<SeqSpec> mqa_seqs = {{31, 1, 0, {}}, {32, 1, 0, {}},  {33, 1, 0, {}},
                                           {95, 1, 0, {}}, {700, 1, 0, {}}, {0, 1, 0, {}}};
    run_case({16, 1, 512, 0, mqa_seqs, splits}, 3);
    run_case(
        {32, 2, 256, 40, {{100, 1, 50, {}}, {7, 1, 50, {}}, {63, 1, 50, {}}, {0, 1, 50, {}}, {49, 1, 50, {}}}, splits},
        4);
    // Beside prefill chunks (a server step while requests arrive): the chunks on the flash kernel (split or not),
    // the one-row sequences on the MQA kernel, unsplit.
    std::vector<SeqSpec> mixed = mqa_seqs;
    mixed.insert(mixed.begin() + 2, {{0, 20, 0, {}}, {40, 7, 0, {}}});
    run_case({16, 1, 512, 0, mixed, splits}, 5);
  }
}

// A step that mixes decode rows with prefill chunks (the server's steps while requests arrive): the one-row
// sequences take the decode kernel, the chunks the flash kernel, in one call; with the flash tiles split or not.
TEST_F(CudaAttention, MixedDecodeAndPrefillRows) {
  std::vector<int32_t> blocks(12, -1);
  std::fill(blocks.begin() + 3, blocks.begin() + 9, 0);  // a bidirectional block inside a chunk
  for (int64_t splits : {int64_t(1), int64_t(16)}) {
    // The 12B's sliding shape: rings that wrapped, a chunk with a block, a chunk from position 0.
    run_case({16, 8, 256, 40, {{100, 1, 50, {}}, {7, 12, 50, blocks}, {49, 1, 50, {}}, {0, 20, 50, {}}}, splits}, 21);
    // GQA 4 at d 128, linear caches: a long decode row next to a short chunk at a long context.
    run_case({8, 2, 128, 0, {{300, 3, 0, {}}, {517, 1, 0, {}}, {0, 1, 0, {}}}, splits}, 22);
  }
}

TEST_F(CudaAttention, PrefillChunksWithBlocksWindowAndOddDims) {
  std::vector<int32_t> blocks(37, -1);
  std::fill(blocks.begin() + 5, blocks.begin() + 17, 0);   // a bidirectional block inside the chunk
  std::fill(blocks.begin() + 20, blocks.begin() + 37, 1);  // one that ends the chunk
  for (int64_t splits : {int64_t(1), int64_t(8)}) {
    run_case({4, 2, 16, 8, {{13, 37, 8 + 6, blocks}, {0, 5, 14, {}}}, splits}, 3);
    run_case({4, 2, 16, 0, {{13, 37, 0, {}}, {3, 2, 0, {}}}, splits}, 4);
    run_case({6, 3, 64, 0, {{0, 29, 0, {}}}, splits}, 5);                 // GQA group 2 of 3 kv heads
    run_case({16, 1, 32, 0, {{5, 9, 0, {}}, {0, 1, 0, {}}}, splits}, 7);  // MQA: 16 heads fill a tile row group
    run_case(
        {8,
         8,
         256,
         24,
         {{70, 33, 30,
           blocks.size() >= 33 ? std::vector<int32_t>(blocks.begin(), blocks.begin() + 33) : std::vector<int32_t>{}}},
         splits},
        6);
  }
}

// Prefill chunks at the 12B's shapes, long enough for the wgmma kernel (on a Hopper chip; elsewhere both runs take
// the mma.sync kernel): the sliding layers' GQA 2 at d 256 with rings that wrapped and a bidirectional block,
// the full layers' MQA at d 512 beside a decode row, GQA 1 at d 256; split and unsplit keys; the bf16 and fp8 caches
// (the producer widens the e4m3 bytes to the bf16 operand).
TEST_F(CudaAttention, WgmmaPrefillAt12BShapes) {
  std::vector<int32_t> blocks(140, -1);
  std::fill(blocks.begin() + 30, blocks.begin() + 100, 0);  // a 70-row image block
  const AttentionMode modes[] = {AttentionMode::Exact, AttentionMode::Fast, AttentionMode::ExactFp8Kv};
  for (int64_t splits : {int64_t(1), int64_t(8)}) {
    run_case({16, 8, 256, 40, {{0, 150, 50, {}}, {37, 140, 50, blocks}}, splits}, 31, modes);
    run_case({16, 1, 512, 0, {{0, 77, 0, {}}, {300, 21, 0, {}}, {5, 1, 0, {}}}, splits}, 32, modes);
    run_case({8, 8, 256, 0, {{0, 130, 0, {}}, {64, 3, 0, {}}}, splits}, 33, modes);
  }
}

// kv_store into an fp8 cache rounds exactly as the host reference (test::e4m3_bits): ties between two e4m3
// values (to the even code), subnormals, values past 448 (saturated), -0, NaN; keys divided by k_scale first.
TEST_F(CudaAttention, Fp8KvStoreRoundsToNearestEvenAndSaturates) {
  std::vector<float> vals;
  for (int c = 0; c < 0x7f; ++c) {  // every finite e4m3 value, the midpoints to the next one, and just around them
    const float a = test::e4m3_value(uint8_t(c)), b = test::e4m3_value(uint8_t(c + 1));
    for (float x : {a, std::nextafter(a, 1e9f), (a + b) / 2, std::nextafter((a + b) / 2, 0.0f)}) {
      vals.push_back(x);
      vals.push_back(-x);
    }
  }
  for (float x : {448.0f, 463.9f, 464.0f, 1e6f, 3e38f, INFINITY, -INFINITY, NAN, -0.0f, 1e-30f, 0.0009765625f})
    vals.push_back(x);
  while (vals.size() % 16) vals.push_back(1.0f);
  const int64_t rs = 16, rows = int64_t(vals.size()) / rs;
  for (float k_scale : {1.0f, 4.0f}) {
    DeviceBuffer<uint16_t> ck(size_t(rows * rs / 2)), cv(size_t(rows * rs / 2));
    const std::vector<AttentionSeq> seqs{
        {.cache_k = ck.data(), .cache_v = cv.data(), .ring_capacity = 0, .row0 = 0, .n_rows = rows, .chunk_start = 0}};
    auto dseqs = upload(seqs);
    auto dk = upload(vals), dv = upload(vals);
    auto drow = upload(std::vector<int32_t>(size_t(rows), 0));
    kv_store({.k = dk.data(),
              .v = dv.data(),
              .seqs = dseqs.data(),
              .row_seq = drow.data(),
              .rows = rows,
              .row_size = rs,
              .type = KvType::Fp8,
              .k_scale = k_scale});
    const auto k16 = ck.to_host(), v16 = cv.to_host();
    std::vector<uint8_t> kb(vals.size()), vb(vals.size());
    std::memcpy(kb.data(), k16.data(), kb.size());
    std::memcpy(vb.data(), v16.data(), vb.size());
    int bad = 0;
    for (size_t i = 0; i < vals.size(); ++i) {
      const uint8_t want_k = test::e4m3_bits(vals[i] / k_scale), want_v = test::e4m3_bits(vals[i]);
      if ((kb[i] != want_k || vb[i] != want_v) && bad++ < 8)
        ADD_FAILURE() << "value " << vals[i] << " k_scale " << k_scale << ": key byte " << int(kb[i]) << " want "
                      << int(want_k) << ", value byte " << int(vb[i]) << " want " << int(want_v);
    }
  }
  EXPECT_NE(test::error_of([&] { kv_store({.k = nullptr}); }), "(no error)");
}

TEST_F(CudaAttention, GemvMatchesCpuMatmulOnBf16Weights) {
  for (int64_t m = 1; m <= kGemvMaxRows; ++m) {
    for (auto [n, k] : {std::pair<int64_t, int64_t>{1, 8}, {37, 72}, {3840, 512}, {513, 3848}}) {
      auto wf = random_floats(size_t(n * k), uint32_t(m * 7 + n));
      const auto w = to_bf16_host(wf);
      auto x = random_floats(size_t(m * k), uint32_t(m + k));
      std::vector<float> want(size_t(m * n));
      cpu::matmul(x.data(), m, MatrixRef{.data = w.data(), .dtype = DType::BF16, .rows = n, .cols = k}, want.data(),
                  ThreadPool::global());
      auto dw = upload(w);
      auto dx = upload(x);
      DeviceBuffer<float> y(size_t(m * n));
      UG_CUDA_CHECK(cudaMemset(y.data(), 0xff, y.bytes()));
      gemv({.w = dw.data(), .x = dx.data(), .y = y.data(), .m = m, .n = n, .k = k});
      auto got = y.to_host();
      // Both accumulate exact bf16 x f32 products in f32, in different orders: |error| <= k * eps *
      // sum|terms|.
      float worst = 0, bound = float(k) * 1.2e-7f * 1.5f * 1.5f * 1.0f;
      for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(got[i] - want[i]));
      EXPECT_LE(worst, std::max(bound, 1e-5f)) << "m " << m << " n " << n << " k " << k;
    }
  }
}

TEST_F(CudaAttention, ArgmaxRowsTakesTheLowestIdOnTies) {
  const int64_t rows = 7, n = 262144 + 3;
  auto x = random_floats(size_t(rows * n), 77);
  x[size_t(1 * n + 5)] = 9.0f;  // a tie in row 1: the lower id wins
  x[size_t(1 * n + 200000)] = 9.0f;
  x[size_t(3 * n + n - 1)] = 7.0f;                             // the last element
  std::fill(x.begin() + 4 * n, x.begin() + 5 * n, -INFINITY);  // all -inf: id 0
  x[size_t(5 * n + 10)] = 9.0f;                                // row 5: excluded best ids
  x[size_t(5 * n + 11)] = 8.5f;
  x[size_t(5 * n + 12)] = 8.0f;
  x[size_t(6 * n + 99)] = std::nanf("");  // row 6: a NaN -> -1
  // Excluded ids per row (CSR): row 1 excludes its tie winner, row 5 its two best.
  const std::vector<std::vector<int32_t>> excluded{{}, {5}, {}, {}, {}, {10, 11}, {}};
  std::vector<int32_t> at{0}, ids;
  for (const auto& e : excluded) {
    ids.insert(ids.end(), e.begin(), e.end());
    at.push_back(int32_t(ids.size()));
  }
  auto dx = upload(x);
  auto dat = upload(at), dids = upload(ids);
  DeviceBuffer<int32_t> out(static_cast<size_t>(rows));
  argmax_rows({.x = dx.data(),
               .out = out.data(),
               .rows = rows,
               .n = n,
               .excluded_at = dat.data(),
               .excluded_ids = dids.data(),
               .max_excluded = 2});
  auto got = out.to_host();
  for (int64_t r = 0; r < rows; ++r)
    EXPECT_EQ(got[size_t(r)], argmax_lowest(x.data() + r * n, n, excluded[size_t(r)])) << "row " << r;
  EXPECT_EQ(got[1], 200000);
  EXPECT_EQ(got[3], n - 1);
  EXPECT_EQ(got[4], 0);
  EXPECT_EQ(got[5], 12);
  EXPECT_EQ(got[6], -1);
  // Without exclusions: the plain argmax.
  argmax_rows({.x = dx.data(), .out = out.data(), .rows = 2, .n = n});
  EXPECT_EQ(out.to_host()[1], 5);
}

TEST_F(CudaAttention, RejectsUnsupportedShapesByName) {
  DeviceBuffer<float> b(64);
  // A one-row call over placeholder buffers (the checks run before any launch): one flash tile, 2 heads over 1 kv
  // head, as `set` changes it.
  const auto call = [&](const std::function<void(AttentionParams&)>& set) {
    AttentionParams p{.q = b.data(),
                      .k = b.data(),
                      .v = b.data(),
                      .out = b.data(),
                      .seqs = reinterpret_cast<const AttentionSeq*>(b.data()),
                      .tiles = reinterpret_cast<const int32_t*>(b.data()),
                      .partial = b.data(),
                      .n_tiles = 1,
                      .rows = 1,
                      .n_seqs = 1,
                      .n_heads = 2,
                      .n_kv_heads = 1};
    set(p);
    attention(p);
  };
  // `run` must throw an error whose message contains `needle`; `what` names the call when it does not throw.
  const auto expect_rejected = [](const std::function<void()>& run, const std::string& needle,
                                  const std::string& what) {
    try {
      run();
      ADD_FAILURE() << what << " accepted";
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  for (int64_t d : {int64_t(640), int64_t(48)})
    expect_rejected([&] { call([&](AttentionParams& p) { p.head_dim = d; }); }, "head_dim " + std::to_string(d),
                    "head_dim " + std::to_string(d));
  expect_rejected(  // a decode-kernel call outside its limits (a hand-made plan)
      [&] {
        call([](AttentionParams& p) {
          p.n_heads = 8;
          p.head_dim = 64;
          p.n_decode_tiles = 1;
        });
      },
      "the decode kernel takes head_dim 128 / 256 / 512; got head_dim 64, group 8",
      "a decode-kernel call at head_dim 64");
  // Hand-made wgmma plans outside the kernel's limits: a head dim it lacks, an f32 cache, tiles of the wrong size.
  for (auto [d, mode, queries] : {std::tuple<int64_t, AttentionMode, int64_t>{128, AttentionMode::Exact, 64},
                                  {256, AttentionMode::ExactF32Kv, 64},
                                  {256, AttentionMode::Fast, 1}}) {
    expect_rejected(
        [&] {
          call([&](AttentionParams& p) {
            p.head_dim = d;
            p.mode = mode;
            p.queries_per_tile = queries;
            p.wgmma = true;
          });
        },
        "wgmma",
        "a wgmma call at head_dim " + std::to_string(d) + ", mode " + std::to_string(int(mode)) + ", " +
            std::to_string(queries) + " queries");
  }
  // Hand-made MQA decode plans outside the kernel's limits: a group of 2, head dim 128, the f32 cache.
  for (auto [heads, d, mode] : {std::tuple<int64_t, int64_t, AttentionMode>{2, 512, AttentionMode::Exact},
                                {16, 128, AttentionMode::Exact},
                                {16, 512, AttentionMode::ExactF32Kv}}) {
    expect_rejected(
        [&] {
          call([&](AttentionParams& p) {
            p.n_heads = heads;
            p.head_dim = d;
            p.mode = mode;
            p.mqa = true;
            p.n_tiles = 0;
            p.n_decode_tiles = 1;
          });
        },
        "the MQA decode kernel takes one-row tiles of a 16-head group",
        "an MQA decode call with " + std::to_string(heads) + " heads at head_dim " + std::to_string(d) + ", mode " +
            std::to_string(int(mode)));
  }
  const std::vector<int64_t> rows{1};
  expect_rejected([&] { plan_attention(rows, 128, 1, 64, AttentionMode::Exact, 1); }, "GQA group 128",
                  "a GQA group of 128");
  expect_rejected(
      [&] {
        gemv({.w = reinterpret_cast<const uint16_t*>(b.data()), .x = b.data(), .y = b.data(), .m = 9, .n = 1, .k = 8});
      },
      "m 9", "m 9");
}

}  // namespace
}  // namespace ug::cuda

namespace ug::cuda {
namespace {

// Throughput of the decode-shaped kernels at the 12B's shapes (printed; run by scripts/gpu_check.sh with
// --gtest_also_run_disabled_tests). Not a pass/fail test: docs/perf.md records the numbers.
double time_us(const std::function<void()>& fn, int reps = 20) {
  fn();
  cudaEvent_t a, b;
  UG_CUDA_CHECK(cudaEventCreate(&a));
  UG_CUDA_CHECK(cudaEventCreate(&b));
  UG_CUDA_CHECK(cudaEventRecord(a));
  for (int i = 0; i < reps; ++i) fn();
  UG_CUDA_CHECK(cudaEventRecord(b));
  UG_CUDA_CHECK(cudaEventSynchronize(b));
  float ms = 0;
  UG_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return 1000.0 * ms / reps;
}

TEST_F(CudaAttention, DISABLED_DecodeKernelThroughput12B) {
  for (int64_t m : {int64_t(1), int64_t(2), int64_t(8)}) {
    for (auto [n, k] : {std::pair<int64_t, int64_t>{4096, 3840},
                        {2048, 3840},
                        {3840, 4096},
                        {15360, 3840},
                        {3840, 15360},
                        {262144, 3840}}) {
      DeviceBuffer<uint16_t> w(static_cast<size_t>(n * k));
      DeviceBuffer<float> x(static_cast<size_t>(m * k)), y(static_cast<size_t>(m * n));
      UG_CUDA_CHECK(cudaMemset(w.data(), 0, w.bytes()));
      UG_CUDA_CHECK(cudaMemset(x.data(), 0, x.bytes()));
      const double us = time_us([&] { gemv({.w = w.data(), .x = x.data(), .y = y.data(), .m = m, .n = n, .k = k}); });
      std::printf("GEMV m=%lld n=%lld k=%lld: %.1f us, %.0f GB/s = %.3f of 4240 GB/s\n", (long long)m, (long long)n,
                  (long long)k, us, double(w.bytes()) / us / 1e3, double(w.bytes()) / us / 1e3 / 4240.0);
    }
  }
  // Attention at the 12B's shapes: sliding layer (16 heads over 8, d 256, ring 1024) and full layer (MQA, d 512).
  // Decode: `batch` sequences of one row at context ctx; prefill: one sequence of ctx rows from position 0.
  for (AttentionMode mode :
       {AttentionMode::ExactF32Kv, AttentionMode::Exact, AttentionMode::Fast, AttentionMode::ExactFp8Kv}) {
    for (auto [batch, ctx, prefill] : {std::tuple<int64_t, int64_t, bool>{1, 1024, false},
                                       {1, 16384, false},
                                       {32, 1024, false},
                                       {64, 1024, false},
                                       {1, 2048, true},
                                       {1, 8192, true}}) {
      for (auto [Hkv, d, window] : {std::tuple<int64_t, int64_t, int64_t>{8, 256, 1024}, {1, 512, 0}}) {
        const int64_t H = 16, rows = prefill ? ctx : batch, rs = Hkv * d;
        const int64_t slots = window > 0 ? window : ctx + 1;
        DeviceBuffer<float> q(size_t(rows * H * d)), k(size_t(rows * rs)), v(size_t(rows * rs)),
            out(size_t(rows * H * d));
        const int64_t value_bytes = kv_type_bytes(kv_type_of(mode));
        const int64_t el =
            mode == AttentionMode::ExactF32Kv ? 2 : 1;  // uint16_t per value (an fp8 cache: room to spare)
        DeviceBuffer<uint16_t> ck(size_t(prefill ? 1 : batch * slots * rs * el)),
            cv(size_t(prefill ? 1 : batch * slots * rs * el));
        for (auto* b : {&q, &k, &v, &out}) UG_CUDA_CHECK(cudaMemset(b->data(), 0, b->bytes()));
        for (auto* b : {&ck, &cv}) UG_CUDA_CHECK(cudaMemset(b->data(), 0, b->bytes()));
        std::vector<AttentionSeq> seqs;
        std::vector<int64_t> seq_rows;
        for (int64_t i = 0; i < (prefill ? 1 : batch); ++i) {
          seqs.push_back({.cache_k = ck.data() + (prefill ? 0 : i * slots * rs * el),
                          .cache_v = cv.data() + (prefill ? 0 : i * slots * rs * el),
                          .ring_capacity = window > 0 ? slots : 0,
                          .row0 = prefill ? 0 : i,
                          .n_rows = prefill ? ctx : 1,
                          .chunk_start = prefill ? 0 : ctx});
          seq_rows.push_back(prefill ? ctx : 1);
        }
        auto dseqs = upload(seqs);
        const int64_t keys = prefill ? ctx : std::min(ctx + 1, window > 0 ? window : ctx + 1);
        // Decode shapes on both kernels (the flash kernel is what mixed prefill/decode steps use), prefill on the
        // wgmma kernel (where it runs) and the mma.sync one.
        for (bool new_kernel : {true, false}) {
          PlannedCall call(seq_rows, rows, H, Hkv, d, mode, keys, 128, prefill || new_kernel, !prefill || new_kernel);
          const AttentionPlan& plan = call.plan;
          AttentionParams p{.q = q.data(),
                            .k = k.data(),
                            .v = v.data(),
                            .out = out.data(),
                            .seqs = dseqs.data(),
                            .rows = rows,
                            .n_seqs = int64_t(seqs.size()),
                            .n_heads = H,
                            .n_kv_heads = Hkv,
                            .head_dim = d,
                            .window = window,
                            .mode = mode};
          call.apply(p);
          const double us = time_us([&] { attention(p); }, prefill ? 3 : 20);
          if (prefill) {
            double pairs = 0;  // visible (query, key) pairs per head
            for (int64_t i = 0; i < ctx; ++i) pairs += double(window > 0 ? std::min(i + 1, window) : i + 1);
            const double flops = pairs * double(H) * double(4 * d);
            std::printf(
                "ATTN prefill %lld rows Hkv=%lld d=%lld mode=%d %s kernel: %.0f us, %.0f TFLOP/s (useful; splits "
                "%lld)\n",
                (long long)ctx, (long long)Hkv, (long long)d, int(mode), plan.wgmma ? "wgmma" : "mma.sync", us,
                flops / us / 1e6, (long long)plan.splits);
          } else {
            const double bytes = double(batch) * double(2 * keys * rs * value_bytes);
            std::printf(
                "ATTN decode b%lld ctx=%lld Hkv=%lld d=%lld mode=%d %s kernel: %.1f us, %.0f GB/s of KV (splits "
                "%lld)\n",
                (long long)batch, (long long)ctx, (long long)Hkv, (long long)d, int(mode),
                plan.mqa                  ? "mqa"
                : plan.n_decode_tiles > 0 ? "decode"
                                          : "flash",
                us, bytes / us / 1e3, (long long)std::max(plan.splits, plan.decode_splits));
          }
        }
      }
    }
  }
  // The small per-layer ops at one row (launch-bound): RMSNorm over 3840, RoPE over 16 heads x 256.
  DeviceBuffer<float> h(3840), w(3840);
  UG_CUDA_CHECK(cudaMemset(h.data(), 0, h.bytes()));
  const double norm_us = time_us([&] {
    rms_norm(
        {.x = h.data(), .out = h.data(), .weight = w.data(), .weight_type = WeightType::F32, .rows = 1, .dim = 3840});
  });
  std::printf("RMSNORM 1 x 3840: %.2f us per launch\n", norm_us);
}

}  // namespace
}  // namespace ug::cuda
