// KvCache rollback (truncate), ring slack, clones and the byte accounting the scheduler's budget uses.
#include "model/kv_cache.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "core/error.h"
#include "core/thread_pool.h"
#include "model/decoder.h"
#include "model/loaded_model.h"
#include "test_util.h"

namespace ug {
namespace {

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

class KvCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = load_model(test::data_path("tiny_kv_eq/model-f32"));
    decoder_ = std::make_unique<Decoder>(model_->config, *model_->weights, ThreadPool::global(),
                                         DecoderOptions{.max_chunk = 7});
    std::mt19937 rng(5);
    std::uniform_int_distribution<int32_t> tok(3, 999);
    for (int i = 0; i < 80; ++i) a_.push_back(tok(rng));
    for (int i = 0; i < 80; ++i) b_.push_back(tok(rng));
  }
  const TextConfig& cfg() const { return model_->config.text; }

  // Logits of tokens [from, to) of `ids` after a fresh prefill of ids[0, from).
  std::vector<float> fresh(const std::vector<int32_t>& ids, int64_t from, int64_t to) {
    KvCache c(cfg());
    std::vector<float> logits;
    decoder_->forward({.token_ids = std::span(ids).first(size_t(from))}, c, LogitsMode::None, logits);
    decoder_->forward({.token_ids = std::span(ids).subspan(size_t(from), size_t(to - from))}, c, LogitsMode::All,
                      logits);
    return logits;
  }

  std::unique_ptr<LoadedModel> model_;
  std::unique_ptr<Decoder> decoder_;
  std::vector<int32_t> a_, b_;
};

TEST_F(KvCacheTest, TruncateThenContinueEqualsFreshPrefill) {
  const int64_t W = cfg().sliding_window;  // 8
  for (int64_t slack : {int64_t(0), int64_t(4), int64_t(16)}) {
    KvCache probe(cfg(), slack);
    std::vector<float> logits;
    decoder_->forward({.token_ids = std::span(a_).first(40)}, probe, LogitsMode::None, logits);
    // Rings of W + slack slots hold positions [40 - W - slack, 40); the next query at n needs n - W + 1.
    EXPECT_EQ(probe.min_truncate(), 40 - slack - 1) << slack;
    for (int64_t n : {probe.min_truncate(), int64_t(39), int64_t(40)}) {
      KvCache c = probe;  // clone
      c.truncate(n);
      // The prompt now continues differently: b_ from position n on.
      std::vector<int32_t> mixed(a_.begin(), a_.begin() + n);
      mixed.insert(mixed.end(), b_.begin() + n, b_.begin() + 60);
      std::vector<float> got;
      decoder_->forward({.token_ids = std::span(mixed).subspan(size_t(n))}, c, LogitsMode::All, got);
      EXPECT_TRUE(bitwise_equal(got, fresh(mixed, n, 60))) << "slack " << slack << " truncate to " << n;
    }
    if (probe.min_truncate() > 0) {
      KvCache c = probe;
      EXPECT_THROW(c.truncate(probe.min_truncate() - 1), Error);
    }
    EXPECT_GE(W, 1);
  }
}

TEST_F(KvCacheTest, ShortCacheRollsBackToZero) {
  KvCache c(cfg(), 2);
  std::vector<float> logits;
  decoder_->forward({.token_ids = std::span(a_).first(10)}, c, LogitsMode::None, logits);  // 10 <= 8 + 2
  EXPECT_EQ(c.min_truncate(), 0);
  c.truncate(0);
  decoder_->forward({.token_ids = std::span(b_).first(30)}, c, LogitsMode::All, logits);
  EXPECT_TRUE(bitwise_equal(logits, fresh(b_, 0, 30)));
}

TEST_F(KvCacheTest, CloneIsIndependent) {
  KvCache c(cfg(), 12);
  std::vector<float> l1, l2;
  decoder_->forward({.token_ids = std::span(a_).first(20)}, c, LogitsMode::None, l1);
  KvCache d = c;
  decoder_->forward({.token_ids = std::span(a_).subspan(20, 10)}, c, LogitsMode::All, l1);
  decoder_->forward({.token_ids = std::span(b_).subspan(20, 10)}, d, LogitsMode::None, l2);
  d.truncate(20);
  decoder_->forward({.token_ids = std::span(a_).subspan(20, 10)}, d, LogitsMode::All, l2);
  EXPECT_TRUE(bitwise_equal(l1, l2));
}

TEST_F(KvCacheTest, ReserveMatchesBytesFor) {
  for (int64_t slack : {int64_t(0), int64_t(5)}) {
    for (int64_t n : {int64_t(1), int64_t(9), int64_t(100)}) {
      KvCache c(cfg(), slack);
      c.reserve(n);
      EXPECT_EQ(c.bytes(), KvCache::bytes_for(cfg(), slack, n)) << slack << " " << n;
      std::vector<float> logits;
      decoder_->forward({.token_ids = std::span(a_).first(size_t(std::min<int64_t>(n, 80)))}, c, LogitsMode::None,
                        logits);
      EXPECT_EQ(c.bytes(), KvCache::bytes_for(cfg(), slack, n)) << "storing reserved tokens reallocated";
    }
  }
}

}  // namespace
}  // namespace ug
