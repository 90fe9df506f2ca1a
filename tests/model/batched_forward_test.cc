// Decoder::forward_batch gives every sequence bitwise what Decoder::forward gives it alone, whatever the
// batch mix (prefill chunks, decode tokens, multimodal blocks, positions across the sliding window).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>
#include <string>

#include "backend/cpu/matmul.h"
#include "core/bf16.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "model/decoder.h"
#include "model/loaded_model.h"
#include "model/presets.h"
#include "model/random_checkpoint.h"
#include "test_util.h"

namespace ug {
namespace {

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

bool same_cache(const KvCache& a, const KvCache& b, int64_t n_layers) {
  if (a.size() != b.size()) return false;
  for (int64_t l = 0; l < n_layers; ++l)
    if (!bitwise_equal(a.layer(l).k, b.layer(l).k) || !bitwise_equal(a.layer(l).v, b.layer(l).v)) return false;
  return true;
}

// The matmul property batching relies on: a row's result does not depend on the other rows of the call,
// including long rows with several k-blocks (cols > kc) and the decode / prefill switch at 4 tokens.
TEST(BatchedMatmul, RowResultDoesNotDependOnBatch) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  const int64_t rows = 200, cols = 2500, n = 11;
  std::vector<float> wf(size_t(rows * cols)), x(size_t(n * cols));
  for (auto& v : wf) v = nd(rng);
  for (auto& v : x) v = nd(rng);
  std::vector<uint16_t> wb(wf.size());
  for (size_t i = 0; i < wf.size(); ++i) wb[i] = f32_to_bf16(wf[i]);
  for (DType dt : {DType::F32, DType::BF16}) {
    MatrixRef w{.data = dt == DType::F32 ? static_cast<const void*>(wf.data()) : wb.data(),
                .dtype = dt,
                .rows = rows,
                .cols = cols};
    std::vector<float> all(size_t(n * rows));
    cpu::matmul(x.data(), n, w, all.data(), ThreadPool::global());
    for (int64_t sub : {int64_t(1), int64_t(3), int64_t(5)}) {
      for (int64_t t0 = 0; t0 + sub <= n; t0 += sub) {
        std::vector<float> part(size_t(sub * rows));
        cpu::matmul(x.data() + t0 * cols, sub, w, part.data(), ThreadPool::global());
        ASSERT_EQ(0, std::memcmp(part.data(), all.data() + t0 * rows, part.size() * sizeof(float)))
            << dtype_name(dt) << " rows " << t0 << "+" << sub;
      }
    }
  }
}

struct Seq {
  std::vector<int32_t> tokens;     // every token this sequence will see
  std::vector<int32_t> block_ids;  // per token (-1 none)
  std::vector<const float*> rows;  // per token override (nullptr none)
};

class BatchedForward : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = load_model(test::data_path("tiny_kv_eq/model-f32"));
    const int64_t D = model_->config.text.hidden_size;
    std::mt19937 rng(11);
    std::uniform_int_distribution<int32_t> tok(3, 999);
    std::normal_distribution<float> nd;
    media_.resize(size_t(6 * D));
    for (auto& v : media_) v = nd(rng);
    for (int s = 0; s < 4; ++s) {
      Seq q;
      for (int i = 0; i < 128; ++i) q.tokens.push_back(tok(rng));
      q.block_ids.assign(q.tokens.size(), -1);
      q.rows.assign(q.tokens.size(), nullptr);
      seqs_.push_back(q);
    }
    // Sequence 2 holds an image block of 6 soft tokens at positions 13..18.
    Seq& m = seqs_[2];
    for (int i = 0; i < 6; ++i) {
      m.tokens[size_t(13 + i)] = int32_t(model_->config.tokens.image);
      m.block_ids[size_t(13 + i)] = 0;
      m.rows[size_t(13 + i)] = media_.data() + i * D;
    }
  }

  static ForwardInput slice(const Seq& s, int64_t begin, int64_t n) {
    return {.token_ids = std::span(s.tokens).subspan(size_t(begin), size_t(n)),
            .embeddings_override = std::span<const float* const>(s.rows).subspan(size_t(begin), size_t(n)),
            .block_ids = std::span(s.block_ids).subspan(size_t(begin), size_t(n))};
  }

  std::unique_ptr<LoadedModel> model_;
  std::vector<float> media_;
  std::vector<Seq> seqs_;
};

TEST_F(BatchedForward, MixedStepsEqualIndividualRuns) {
  const auto& cfg = model_->config.text;
  const int64_t V = cfg.vocab_size;
  Decoder decoder(model_->config, *model_->weights, ThreadPool::global());
  std::vector<KvCache> batched, alone;
  for (size_t s = 0; s < seqs_.size(); ++s) {
    batched.emplace_back(cfg, 4);
    alone.emplace_back(cfg, 4);
  }
  // Per step and sequence: tokens to process (0 = sits out) and the logits mode. Sequence 2's chunks
  // start and end at block edges (13 and 19).
  struct Plan {
    int64_t n;
    LogitsMode mode;
  };
  const std::vector<std::vector<Plan>> steps = {
      {{5, LogitsMode::Last}, {1, LogitsMode::Last}, {13, LogitsMode::None}, {0, LogitsMode::None}},
      {{1, LogitsMode::Last}, {9, LogitsMode::All}, {6, LogitsMode::All}, {3, LogitsMode::Last}},
      {{1, LogitsMode::Last}, {1, LogitsMode::Last}, {11, LogitsMode::Last}, {17, LogitsMode::All}},
      {{12, LogitsMode::All}, {1, LogitsMode::Last}, {1, LogitsMode::Last}, {1, LogitsMode::Last}},
  };
  for (int rep = 0; rep < 4; ++rep) {
    for (size_t st = 0; st < steps.size(); ++st) {
      std::vector<BatchItem> items;
      std::vector<std::vector<float>> out(seqs_.size());
      for (size_t s = 0; s < seqs_.size(); ++s) {
        const Plan& p = steps[st][s];
        if (p.n == 0) continue;
        out[s].assign(size_t(p.mode == LogitsMode::All ? p.n * V : V), 0.0f);
        items.push_back({.input = slice(seqs_[s], batched[s].size(), p.n),
                         .cache = &batched[s],
                         .mode = p.mode,
                         .logits = out[s].data()});
      }
      decoder.forward_batch(items);
      for (size_t s = 0; s < seqs_.size(); ++s) {
        const Plan& p = steps[st][s];
        if (p.n == 0) continue;
        std::vector<float> ref;
        decoder.forward(slice(seqs_[s], alone[s].size(), p.n), alone[s], p.mode, ref);
        if (p.mode == LogitsMode::None) continue;
        EXPECT_TRUE(bitwise_equal(out[s], ref)) << "rep " << rep << " step " << st << " seq " << s;
      }
    }
  }
  for (size_t s = 0; s < seqs_.size(); ++s) {
    EXPECT_GT(batched[s].size(), 2 * cfg.sliding_window);
    EXPECT_TRUE(same_cache(batched[s], alone[s], cfg.n_layers())) << "seq " << s;
  }
}

// forward() chunking (including a chunk extended over a block) does not change any result.
TEST_F(BatchedForward, ChunkingDoesNotChangeResults) {
  const auto& cfg = model_->config.text;
  const Seq& s = seqs_[2];
  std::vector<float> whole, chunked;
  Decoder d1(model_->config, *model_->weights, ThreadPool::global());
  Decoder d2(model_->config, *model_->weights, ThreadPool::global(), {.max_chunk = 5});
  KvCache c1(cfg), c2(cfg);
  d1.forward(slice(s, 0, 40), c1, LogitsMode::All, whole);
  d2.forward(slice(s, 0, 40), c2, LogitsMode::All, chunked);
  EXPECT_TRUE(bitwise_equal(whole, chunked));
  EXPECT_TRUE(same_cache(c1, c2, cfg.n_layers()));
}

TEST(ChunkBoundary, NeverInsideABlock) {
  std::vector<int32_t> b{-1, 0, 0, 0, -1, 1, 2, 2};
  std::vector<bool> expect{true, true, false, false, true, true, true, false, true};
  for (int64_t e = 0; e <= int64_t(b.size()); ++e) EXPECT_EQ(is_chunk_boundary(b, e), expect[size_t(e)]) << e;
  EXPECT_TRUE(is_chunk_boundary({}, 3));
}

TEST_F(BatchedForward, RejectsSharedCache) {
  Decoder decoder(model_->config, *model_->weights, ThreadPool::global());
  KvCache c(model_->config.text);
  std::vector<float> l1(1024), l2(1024);
  std::vector<BatchItem> items{{.input = slice(seqs_[0], 0, 2), .cache = &c, .logits = l1.data()},
                               {.input = slice(seqs_[1], 0, 2), .cache = &c, .logits = l2.data()}};
  EXPECT_THROW(decoder.forward_batch(items), Error);
}

// Manual benchmark (and a bitwise check at a real size: rows of 2048+ columns, several k-blocks):
//   UG_BENCH_MODEL=/tmp/b14 batched_forward_test --gtest_also_run_disabled_tests --gtest_filter='*DecodeSpeed*'
// writes the bench-1.4b preset there first if the folder does not exist. UG_BENCH_BATCHES="1,4,8" picks
// the batch sizes. Per batch size B: B sequences of 64-token prompts, then decode steps of one token each,
// run as B single forward() calls (sequential) and as one forward_batch() (batched).
TEST(DISABLED_BatchedForward, DecodeSpeed) {
  const char* dir = std::getenv("UG_BENCH_MODEL");
  if (!dir) GTEST_SKIP() << "set UG_BENCH_MODEL";
  if (!std::filesystem::exists(dir)) {
    const ModelPreset& p = find_preset("bench-1.4b");
    write_random_checkpoint(dir, p.config, p.generation_config, {.seed = 1}, ThreadPool::global());
  }
  auto model = load_model(dir);
  const auto& cfg = model->config.text;
  const int64_t V = cfg.vocab_size;
  Decoder decoder(model->config, *model->weights, ThreadPool::global());
  std::vector<int> batches{1, 2, 4, 8, 16};
  if (const char* b = std::getenv("UG_BENCH_BATCHES")) {
    batches.clear();
    for (const char* c = b; *c;) {
      batches.push_back(std::atoi(c));
      while (*c && *c != ',') ++c;
      if (*c) ++c;
    }
  }
  const int steps = 6;
  std::mt19937 rng(1);
  std::uniform_int_distribution<int32_t> tok(3, int32_t(V - 1));
  using Clock = std::chrono::steady_clock;
  double seq1 = 0;
  for (int B : batches) {
    std::vector<KvCache> seq_caches, bat_caches;
    const size_t nb = static_cast<size_t>(B);
    std::vector<std::vector<int32_t>> next(nb);
    std::vector<float> logits;
    for (int s = 0; s < B; ++s) {
      seq_caches.emplace_back(cfg);
      std::vector<int32_t> prompt;
      for (int i = 0; i < 64; ++i) prompt.push_back(tok(rng));
      decoder.forward({.token_ids = prompt}, seq_caches.back(), LogitsMode::None, logits);
      for (int i = 0; i < steps; ++i) next[size_t(s)].push_back(tok(rng));
    }
    bat_caches = seq_caches;
    std::vector<std::vector<float>> seq_out(nb), bat_out(nb, std::vector<float>(static_cast<size_t>(V)));
    double t_seq = 0, t_bat = 0;
    bool equal = true;
    for (int st = 0; st < steps; ++st) {
      auto t0 = Clock::now();
      for (int s = 0; s < B; ++s)
        decoder.forward({.token_ids = std::span(next[size_t(s)]).subspan(size_t(st), 1)}, seq_caches[size_t(s)],
                        LogitsMode::Last, seq_out[size_t(s)]);
      auto t1 = Clock::now();
      std::vector<BatchItem> items;
      for (int s = 0; s < B; ++s)
        items.push_back({.input = {.token_ids = std::span(next[size_t(s)]).subspan(size_t(st), 1)},
                         .cache = &bat_caches[size_t(s)],
                         .logits = bat_out[size_t(s)].data()});
      decoder.forward_batch(items);
      auto t2 = Clock::now();
      if (st > 0) {  // the first step warms up
        t_seq += std::chrono::duration<double>(t1 - t0).count();
        t_bat += std::chrono::duration<double>(t2 - t1).count();
      }
      for (int s = 0; s < B; ++s) equal = equal && bitwise_equal(seq_out[size_t(s)], bat_out[size_t(s)]);
    }
    const double per_seq = t_seq / (steps - 1), per_bat = t_bat / (steps - 1);
    if (B == 1) seq1 = per_seq;
    std::printf(
        "B=%2d  sequential %8.1f ms/step (%6.1f tok/s)  batched %8.1f ms/step (%6.1f tok/s)  "
        "speedup %.2fx  (vs B=1 sequential: %.2fx)\n",
        B, per_seq * 1e3, B / per_seq, per_bat * 1e3, B / per_bat, per_seq / per_bat,
        seq1 > 0 ? B * seq1 / per_bat : 0.0);
    EXPECT_TRUE(equal) << "batched logits differ from sequential at B=" << B;
  }
}

}  // namespace
}  // namespace ug

namespace ug {
namespace {

// The argmax that greedy decoding takes on the backend (BatchItem::argmax) is the Sampler's greedy choice: ties
// to the lowest id, suppressed ids skipped, NaN / +inf an error (-1).
TEST(ArgmaxLowest, MatchesGreedySamplingRules) {
  std::vector<float> x{1.0f, 3.0f, -2.0f, 3.0f, 0.5f};
  EXPECT_EQ(argmax_lowest(x.data(), 5), 1);
  const std::vector<int32_t> skip_one{1};
  EXPECT_EQ(argmax_lowest(x.data(), 5, skip_one), 3);
  const std::vector<int32_t> skip_both{1, 3};
  EXPECT_EQ(argmax_lowest(x.data(), 5, skip_both), 0);
  const std::vector<int32_t> skip_all{0, 1, 2, 3, 4};
  EXPECT_EQ(argmax_lowest(x.data(), 5, skip_all), 0);
  x[4] = std::nanf("");
  EXPECT_EQ(argmax_lowest(x.data(), 5), -1);
  const std::vector<int32_t> skip_nan{4};
  EXPECT_EQ(argmax_lowest(x.data(), 5, skip_nan), 1);  // an excluded NaN does not matter
  x[4] = INFINITY;
  EXPECT_EQ(argmax_lowest(x.data(), 5), -1);
  std::vector<float> neg(4, -INFINITY);
  EXPECT_EQ(argmax_lowest(neg.data(), 4), 0);
}

// argmax_lowest and select_top_logits walk the excluded ids as a sorted set; the lists they get may be in any
// order, repeat ids or name ids past the row. Against the direct rule (search the list for every id) on random
// rows with ties, NaN, +-inf.
TEST(ArgmaxLowest, ExclusionsInAnyOrderMatchTheDirectRule) {
  std::mt19937 rng(77);
  for (int trial = 0; trial < 300; ++trial) {
    const int64_t n = 1 + int64_t(rng() % (trial % 10 == 0 ? 3000 : 200));  // some past several 64-value blocks
    std::vector<float> x(static_cast<size_t>(n));
    for (float& v : x) v = float(int(rng() % 9) - 4);  // many ties
    if (trial % 3 == 0) x[rng() % size_t(n)] = std::nanf("");
    if (trial % 5 == 0) x[rng() % size_t(n)] = INFINITY;
    if (trial % 2 == 0) x[rng() % size_t(n)] = -INFINITY;
    std::vector<int32_t> excluded(rng() % 12);
    for (int32_t& id : excluded) id = int32_t(rng() % uint32_t(n + 3));  // unsorted, repeats, past the row
    const auto is_excluded = [&](int64_t i) {
      return std::find(excluded.begin(), excluded.end(), int32_t(i)) != excluded.end();
    };
    int64_t want = -1;
    bool bad = false;
    for (int64_t i = 0; i < n; ++i) {
      if (is_excluded(i)) continue;
      if (std::isnan(x[size_t(i)]) || x[size_t(i)] == INFINITY) bad = true;
      if (want < 0 || x[size_t(i)] > x[size_t(want)]) want = i;
    }
    SCOPED_TRACE("trial " + std::to_string(trial));
    EXPECT_EQ(argmax_lowest(x.data(), n, excluded), bad ? -1 : int32_t(std::max<int64_t>(want, 0)));

    TopLogits top{.k = 1 + int(rng() % 5)};
    select_top_logits(x.data(), n, excluded, top);
    std::vector<float> kept;
    bool top_bad = false;
    for (int64_t i = 0; i < n; ++i) {
      if (is_excluded(i)) continue;
      if (std::isfinite(x[size_t(i)]))
        kept.push_back(x[size_t(i)]);
      else if (x[size_t(i)] != -INFINITY)
        top_bad = true;
    }
    EXPECT_EQ(top.bad, top_bad);
    if (top_bad) continue;
    std::sort(kept.begin(), kept.end(), std::greater<float>());
    const float threshold = int64_t(kept.size()) >= top.k ? kept[size_t(top.k - 1)] : -INFINITY;
    std::vector<int32_t> want_ids;
    for (int64_t i = 0; i < n; ++i)
      if (!is_excluded(i) && std::isfinite(x[size_t(i)]) && x[size_t(i)] >= threshold) want_ids.push_back(int32_t(i));
    EXPECT_EQ(top.ids, want_ids);
  }
}

}  // namespace
}  // namespace ug
