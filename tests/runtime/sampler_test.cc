#include "runtime/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/decoder_backend.h"

namespace ug {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Plain sampling: only the knobs a test sets are active.
SamplingParams plain(float temperature = 1.0f) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  return p;
}

std::vector<float> log_probs(const std::vector<double>& probs) {
  std::vector<float> out;
  for (double p : probs) out.push_back(float(std::log(p)));
  return out;
}

int32_t sample_once(const SamplingParams& params, std::vector<float> logits,
                    const std::vector<int32_t>& prompt = {},
                    const std::vector<int32_t>& generated = {}) {
  Sampler sampler(params, int32_t(logits.size()));
  return sampler.sample(logits, prompt, generated);
}

// Draws once per seed 0..n-1 (fresh sampler each time) and returns how often each id came up.
std::map<int32_t, int> histogram_over_seeds(SamplingParams params, const std::vector<float>& logits,
                                            int n) {
  std::map<int32_t, int> hist;
  for (int seed = 0; seed < n; ++seed) {
    params.seed = uint64_t(seed);
    ++hist[sample_once(params, logits)];
  }
  return hist;
}

std::set<int32_t> keys(const std::map<int32_t, int>& hist) {
  std::set<int32_t> out;
  for (const auto& [id, count] : hist) out.insert(id);
  return out;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(Sampler, GreedyTiesPickLowestId) {
  EXPECT_EQ(sample_once(plain(0.0f), {1.0f, 3.0f, 3.0f, 2.0f}), 1);
  EXPECT_EQ(sample_once(plain(0.0f), {-kInf, 0.5f, 0.5f, -kInf}), 1);
  EXPECT_EQ(sample_once(plain(0.0f), {7.0f, 7.0f, 7.0f}), 0);
}

TEST(Sampler, GreedyIgnoresSeedAndWarpers) {
  SamplingParams p;  // defaults: top_k 64, top_p 0.95
  p.temperature = 0.0f;
  const std::vector<float> logits = {0.1f, 2.0f, 1.9f, -3.0f};
  for (uint64_t seed = 0; seed < 20; ++seed) {
    p.seed = seed;
    EXPECT_EQ(sample_once(p, logits), 1);
  }
}

TEST(Sampler, TopK1EqualsGreedyForAnyTemperature) {
  std::mt19937 gen(123);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<float> logits(50);
    for (float& x : logits) x = normal(gen);
    const int32_t expected = sample_once(plain(0.0f), logits);
    for (float t : {0.01f, 0.5f, 1.0f, 3.0f, 100.0f}) {
      SamplingParams p = plain(t);
      p.top_k = 1;
      p.seed = uint64_t(trial);
      EXPECT_EQ(sample_once(p, logits), expected) << "trial " << trial << " T=" << t;
    }
  }
}

TEST(Sampler, TopKKeepsExactlyTheKLargest) {
  const std::vector<float> logits = {0.0f, 1.0f, 0.5f, 1.2f, 0.9f, 1.1f, -2.0f, 0.2f};
  SamplingParams p = plain();
  p.top_k = 3;
  EXPECT_EQ(keys(histogram_over_seeds(p, logits, 600)), (std::set<int32_t>{1, 3, 5}));
}

TEST(Sampler, TopKKeepsTiesWithTheKthValueLikeHF) {
  // HF: remove scores < topk(...)[-1], so all three tied maxima survive top_k = 2.
  const std::vector<float> logits = {0.0f, 5.0f, 5.0f, 1.0f, 5.0f};
  SamplingParams p = plain();
  p.top_k = 2;
  EXPECT_EQ(keys(histogram_over_seeds(p, logits, 300)), (std::set<int32_t>{1, 2, 4}));
}

TEST(Sampler, TopPKeepsSmallestSetReachingP) {
  // Sorted probs 0.4 0.3 0.15 0.1 0.05 (ids shuffled). Keep a token iff the mass before it is
  // below top_p: top_p 0.8 -> {0.4, 0.3, 0.15}; 0.5 -> {0.4, 0.3}; 0.01 -> {0.4}.
  const std::vector<float> logits = log_probs({0.1, 0.4, 0.05, 0.15, 0.3});
  SamplingParams p = plain();
  p.top_p = 0.8f;
  EXPECT_EQ(keys(histogram_over_seeds(p, logits, 600)), (std::set<int32_t>{1, 3, 4}));
  p.top_p = 0.5f;
  EXPECT_EQ(keys(histogram_over_seeds(p, logits, 400)), (std::set<int32_t>{1, 4}));
  p.top_p = 0.01f;
  EXPECT_EQ(keys(histogram_over_seeds(p, logits, 100)), (std::set<int32_t>{1}));
}

TEST(Sampler, TopPRunsAfterTopKOnRenormalizedProbs) {
  // After top_k 3 the probs are 0.47 0.35 0.18: the mass before the third is 0.82 >= 0.8, so it
  // goes; without top-k the mass before it is 0.7 and it stays.
  const std::vector<float> logits = log_probs({0.4, 0.3, 0.15, 0.1, 0.05});
  SamplingParams p = plain();
  p.top_p = 0.8f;
  p.top_k = 3;
  EXPECT_EQ(keys(histogram_over_seeds(p, logits, 400)), (std::set<int32_t>{0, 1}));
  p.top_k = 0;
  EXPECT_EQ(keys(histogram_over_seeds(p, logits, 600)), (std::set<int32_t>{0, 1, 2}));
}

// Samples `draws` times and checks every id lies in the brute-force nucleus (ids must be ranked
// by id, i.e. logits decreasing) and that ids right at its edge do come up.
void expect_nucleus(const std::vector<float>& logits, float top_p, int draws) {
  double total = 0.0;
  for (float x : logits) total += std::exp(double(x));
  int32_t nucleus = 0;
  for (double before = 0.0; before < top_p * total; ++nucleus) {
    before += std::exp(double(logits[size_t(nucleus)]));
  }
  SamplingParams p = plain();
  p.top_p = top_p;
  Sampler sampler(p, int32_t(logits.size()));
  int32_t max_seen = -1;
  for (int i = 0; i < draws; ++i) {
    std::vector<float> scratch = logits;
    max_seen = std::max(max_seen, sampler.sample(scratch, {}, {}));
  }
  EXPECT_LT(max_seen, nucleus);
  EXPECT_GT(max_seen, nucleus - 30);  // the nucleus is not cut short either
}

TEST(Sampler, TopPOverLargeNucleusMatchesBruteForce) {
  // A nucleus of ~1400 ids among 4000: the rank bisection needs several rounds.
  std::vector<float> logits(4000);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = -0.0005f * float(i);
  expect_nucleus(logits, 0.5f, 3000);
}

TEST(Sampler, TopPOverFullVocabWithLongTail) {
  // A 2000-token ramp over a 260k-token tail: the tail pre-filter drops the tail unsorted.
  std::vector<float> logits(262144, -12.0f);
  for (size_t i = 0; i < 2000; ++i) logits[i] = -0.001f * float(i);
  expect_nucleus(logits, 0.5f, 400);
}

TEST(Sampler, MinPKeepsTokensAboveFractionOfMax) {
  // probs 0.5 0.2 0.1 0.06 0.04 (ids shuffled); min_p 0.15 -> threshold 0.075.
  const std::vector<float> logits = log_probs({0.06, 0.5, 0.1, 0.04, 0.2, 0.1});
  SamplingParams p = plain();
  p.min_p = 0.15f;
  EXPECT_EQ(keys(histogram_over_seeds(p, logits, 600)), (std::set<int32_t>{1, 2, 4, 5}));
  p.min_p = 1.0f;
  EXPECT_EQ(keys(histogram_over_seeds(p, logits, 100)), (std::set<int32_t>{1}));
}

TEST(Sampler, MinPSeesTemperatureScaledProbs) {
  // Ratios to the max are 0.4 0.2 0.12 0.08 at T=1; at T=2 their roots 0.63 0.45 0.35 0.28.
  const std::vector<float> logits = log_probs({0.5, 0.2, 0.1, 0.06, 0.04});
  SamplingParams p = plain(1.0f);
  p.min_p = 0.3f;
  EXPECT_EQ(keys(histogram_over_seeds(p, logits, 400)), (std::set<int32_t>{0, 1}));
  p.temperature = 2.0f;
  EXPECT_EQ(keys(histogram_over_seeds(p, logits, 600)), (std::set<int32_t>{0, 1, 2, 3}));
}

double chi_square(const std::vector<int>& counts, const std::vector<double>& probs, int n) {
  double chi = 0.0;
  for (size_t i = 0; i < counts.size(); ++i) {
    const double expected = probs[i] * n;
    chi += (counts[i] - expected) * (counts[i] - expected) / expected;
  }
  return chi;
}

TEST(Sampler, TemperatureScalesTheDistribution) {
  const std::vector<float> logits = {0.0f, 1.0f, 2.0f, 0.5f};
  const int n = 20000;
  auto expected_probs = [&](double t) {
    std::vector<double> probs;
    for (float x : logits) probs.push_back(std::exp(x / t));
    const double z = std::accumulate(probs.begin(), probs.end(), 0.0);
    for (double& q : probs) q /= z;
    return probs;
  };
  for (float t : {0.5f, 1.0f, 2.0f}) {
    SamplingParams p = plain(t);
    p.seed = 42;
    Sampler sampler(p, 4);
    std::vector<int> counts(4, 0);
    for (int i = 0; i < n; ++i) {
      std::vector<float> scratch = logits;
      ++counts[size_t(sampler.sample(scratch, {}, {}))];
    }
    // 3 degrees of freedom: P(chi2 > 16.27) = 0.001. The seed is fixed, so this is stable.
    EXPECT_LT(chi_square(counts, expected_probs(t), n), 16.27) << "T=" << t;
    // ...and the sample clearly rejects the distribution of a different temperature.
    EXPECT_GT(chi_square(counts, expected_probs(t * 1.5), n), 100.0) << "T=" << t;
  }
}

TEST(Sampler, RepetitionPenaltyFollowsHFMath) {
  SamplingParams p = plain(0.0f);
  p.repetition_penalty = 2.0f;
  // Positive logits are divided, negative ones multiplied, each distinct id once.
  std::vector<float> logits = {2.0f, 1.5f, -1.0f, -1.2f, 0.0f};
  Sampler sampler(p, 5);
  const std::vector<int32_t> prompt = {0, 2, 0};
  const std::vector<int32_t> generated = {0, 2};
  EXPECT_EQ(sampler.sample(logits, prompt, generated), 1);  // 2.0 -> 1.0 < 1.5
  EXPECT_EQ(logits, (std::vector<float>{1.0f, 1.5f, -2.0f, -1.2f, 0.0f}));

  // Negative side: -1.0 becomes -2.0 and loses to -1.5.
  std::vector<float> negative = {-1.0f, -1.5f, -3.0f};
  EXPECT_EQ(Sampler(p, 3).sample(negative, {}, std::vector<int32_t>{0}), 1);
  EXPECT_EQ(negative[0], -2.0f);

  // A penalty below 1 encourages repeats.
  p.repetition_penalty = 0.5f;
  EXPECT_EQ(sample_once(p, {1.0f, 1.5f}, {0}), 0);  // 1.0 / 0.5 = 2.0
}

TEST(Sampler, PresenceAndFrequencyCountGeneratedOnly) {
  SamplingParams p = plain(0.0f);
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  std::vector<float> logits = {1.0f, 3.0f, 2.0f, 1.0f};
  Sampler sampler(p, 4);
  const std::vector<int32_t> prompt = {3, 3};
  const std::vector<int32_t> generated = {1, 1, 1, 2};
  // id 1: 3 - 0.75 - 0.5 = 1.75; id 2: 2 - 0.25 - 0.5 = 1.25; the prompt's id 3 is untouched.
  EXPECT_EQ(sampler.sample(logits, prompt, generated), 1);
  EXPECT_EQ(logits, (std::vector<float>{1.0f, 1.75f, 1.25f, 1.0f}));

  // Same sampler, next step: counts from the previous call must not leak.
  std::vector<float> again = {1.0f, 1.4f};
  Sampler small(p, 2);
  EXPECT_EQ(small.sample(again, {}, std::vector<int32_t>{1}), 0);  // 1.4 - 0.75 = 0.65
  std::vector<float> third = {1.0f, 1.4f};
  EXPECT_EQ(small.sample(third, {}, {}), 1);
  EXPECT_EQ(third[1], 1.4f);
}

TEST(Sampler, PenaltiesComposeInHFOrder) {
  // Repetition first, then presence: 2.5 / 2 - 1 = 0.25 loses to id 0 (0.5); the other order,
  // (2.5 - 1) / 2 = 0.75, would pick id 1.
  SamplingParams p = plain(0.0f);
  p.repetition_penalty = 2.0f;
  p.presence_penalty = 1.0f;
  std::vector<float> logits = {0.5f, 2.5f};
  EXPECT_EQ(Sampler(p, 2).sample(logits, {}, std::vector<int32_t>{1}), 0);
  EXPECT_EQ(logits[1], 0.25f);
}

TEST(Sampler, SuppressedIdsAreNeverChosen) {
  const std::vector<float> logits = {0.0f, 0.3f, 9.0f, 0.1f, 8.5f};
  SamplingParams p = plain(0.0f);
  p.suppress_tokens = {2, 4};
  EXPECT_EQ(sample_once(p, logits), 1);
  p.temperature = 1.0f;
  EXPECT_EQ(keys(histogram_over_seeds(p, logits, 500)), (std::set<int32_t>{0, 1, 3}));
  p.suppress_tokens = {0, 1, 2, 3, 4};
  EXPECT_NE(error_of([&] { sample_once(p, logits); }).find("every token is masked"),
            std::string::npos);
}

std::vector<int32_t> generate(uint64_t seed, int steps) {
  SamplingParams p;  // defaults: T 1, top_k 64, top_p 0.95
  p.seed = seed;
  p.repetition_penalty = 1.1f;
  p.presence_penalty = 0.2f;
  const int32_t vocab = 1000;
  Sampler sampler(p, vocab);
  std::mt19937 logits_gen(99);  // the same logits every run
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<int32_t> prompt = {5, 6, 7}, out;
  for (int i = 0; i < steps; ++i) {
    std::vector<float> logits(static_cast<size_t>(vocab));
    for (float& x : logits) x = normal(logits_gen);
    out.push_back(sampler.sample(logits, prompt, out));
  }
  return out;
}

TEST(Sampler, SameSeedGivesSameSequence) {
  const auto a = generate(7, 64);
  EXPECT_EQ(a, generate(7, 64));
  EXPECT_NE(a, generate(8, 64));
}

TEST(Sampler, FullVocabDefaultsPickFromTopK) {
  const int32_t vocab = 262144;
  std::mt19937 gen(5);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  std::vector<float> logits(static_cast<size_t>(vocab));
  for (float& x : logits) x = normal(gen);
  std::vector<float> sorted = logits;
  std::nth_element(sorted.begin(), sorted.begin() + 63, sorted.end(), std::greater<float>());
  const float kth = sorted[63];
  SamplingParams p;
  p.suppress_tokens = {258883, 258882};
  Sampler sampler(p, vocab);
  for (int i = 0; i < 20; ++i) {
    std::vector<float> scratch = logits;
    const int32_t id = sampler.sample(scratch, {}, {});
    EXPECT_GE(logits[size_t(id)], kth);
    EXPECT_NE(id, 258883);
    EXPECT_NE(id, 258882);
  }
}

void expect_invalid(const std::function<void(SamplingParams&)>& edit,
                    const std::vector<std::string>& needles) {
  SamplingParams p;
  edit(p);
  const std::string message = error_of([&] { p.validate(); });
  for (const std::string& needle : needles) {
    EXPECT_NE(message.find(needle), std::string::npos) << message;
  }
}

TEST(Sampler, ValidateNamesFieldAndRange) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  expect_invalid([](SamplingParams& p) { p.temperature = -0.5f; }, {"temperature", ">= 0", "-0.5"});
  expect_invalid([&](SamplingParams& p) { p.temperature = nan; }, {"temperature", "nan"});
  expect_invalid([](SamplingParams& p) { p.temperature = kInf; }, {"temperature", "finite"});
  expect_invalid([](SamplingParams& p) { p.top_p = 1.5f; }, {"top_p", "(0, 1]", "1.5"});
  expect_invalid([](SamplingParams& p) { p.top_p = 0.0f; }, {"top_p", "(0, 1]"});
  expect_invalid([&](SamplingParams& p) { p.top_p = nan; }, {"top_p"});
  expect_invalid([](SamplingParams& p) { p.top_k = -1; }, {"top_k", ">= 0", "-1"});
  expect_invalid([](SamplingParams& p) { p.min_p = 1.01f; }, {"min_p", "[0, 1]"});
  expect_invalid([&](SamplingParams& p) { p.min_p = nan; }, {"min_p"});
  expect_invalid([](SamplingParams& p) { p.repetition_penalty = 0.0f; },
                 {"repetition_penalty", "> 0"});
  expect_invalid([](SamplingParams& p) { p.repetition_penalty = kInf; }, {"repetition_penalty"});
  expect_invalid([](SamplingParams& p) { p.presence_penalty = 2.5f; },
                 {"presence_penalty", "[-2, 2]"});
  expect_invalid([&](SamplingParams& p) { p.frequency_penalty = nan; }, {"frequency_penalty"});
  expect_invalid(
      [](SamplingParams& p) {
        p.suppress_tokens = {3, -4};
      },
      {"suppress_tokens[1]", "-4"});

  SamplingParams ok;
  ok.temperature = 0.0f;
  ok.top_p = 1.0f;
  ok.min_p = 1.0f;
  ok.presence_penalty = -2.0f;
  EXPECT_NO_THROW(ok.validate());
  EXPECT_NO_THROW(SamplingParams().validate());

  SamplingParams outside;
  outside.suppress_tokens = {10};
  EXPECT_NE(error_of([&] { Sampler(outside, 10); }).find("suppress_tokens[0] = 10"),
            std::string::npos);
  EXPECT_NE(error_of([&] { Sampler(SamplingParams(), 0); }).find("vocab_size"), std::string::npos);
  SamplingParams bad_top_p;
  bad_top_p.top_p = 2.0f;
  EXPECT_NE(error_of([&] { Sampler(bad_top_p, 10); }).find("top_p"), std::string::npos);
}

TEST(Sampler, RejectsBadLogitsAndIds) {
  Sampler sampler(plain(), 4);
  std::vector<float> nan_logits = {0.0f, 1.0f, 2.0f, std::nanf("")};
  EXPECT_EQ(error_of([&] { sampler.sample(nan_logits, {}, {}); }),
            "Sampler: logits contain NaN at id 3");
  std::vector<float> inf_logits = {0.0f, kInf, 2.0f, 1.0f};
  EXPECT_NE(error_of([&] { sampler.sample(inf_logits, {}, {}); }).find("+inf at id 1"),
            std::string::npos);
  std::vector<float> short_logits = {0.0f, 1.0f};
  EXPECT_NE(error_of([&] { sampler.sample(short_logits, {}, {}); }).find("2 entries, expected 4"),
            std::string::npos);
  std::vector<float> logits = {0.0f, 1.0f, 2.0f, 3.0f};
  EXPECT_NE(error_of([&] {
              sampler.sample(logits, std::vector<int32_t>{1, 4}, {});
            }).find("prompt_ids[1] = 4"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              sampler.sample(logits, {}, std::vector<int32_t>{-1});
            }).find("generated_ids[0] = -1"),
            std::string::npos);
  std::vector<float> all_masked(4, -kInf);
  EXPECT_NE(error_of([&] { sampler.sample(all_masked, {}, {}); }).find("every token is masked"),
            std::string::npos);
}

// The backend's top-k candidates (ug::select_top_logits, the oracle of the GPU selection) drawn from by
// sample_candidates give the same ids as sample() on the whole row, draw for draw from one seed: ties at the k-th
// value, masked and suppressed ids, fewer finite logits than k, top-p and min-p after top-k, several temperatures.
TEST(Sampler, CandidatesFromTheBackendEqualTheWholeRow) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  const int32_t vocab = 3000;
  int compared = 0;
  for (int32_t k : {1, 2, 40, 64, 1024}) {
    for (float top_p : {1.0f, 0.9f, 0.3f}) {
      for (float min_p : {0.0f, 0.05f}) {
        for (float temperature : {0.4f, 1.0f, 2.5f}) {
          SamplingParams params = plain(temperature);
          params.top_k = k;
          params.top_p = top_p;
          params.min_p = min_p;
          params.seed = uint64_t(k * 7 + compared);
          params.suppress_tokens = {17, 3, 17};
          Sampler whole(params, vocab), from_top(params, vocab);
          ASSERT_TRUE(from_top.samples_from_top_k());
          TopLogits top{.k = k};
          for (int step = 0; step < 6; ++step) {
            std::vector<float> row(static_cast<size_t>(vocab));
            for (float& x : row) x = normal(rng);
            if (step % 2) {  // coarse values: many ties, also at the k-th value
              for (float& x : row) x = std::round(x * 2.0f) / 2.0f;
            }
            if (step == 4) {  // fewer finite logits than k
              for (size_t i = 0; i < row.size(); ++i)
                if (i % 97) row[i] = -kInf;
            }
            row[3] = 100.0f;  // suppressed: would win every draw
            select_top_logits(row.data(), vocab, params.suppress_tokens, top);
            ASSERT_FALSE(top.bad);
            const int32_t want = whole.sample(row, {}, {});
            EXPECT_EQ(from_top.sample_candidates(top.ids, top.values), want)
                << "k " << k << " top_p " << top_p << " min_p " << min_p << " T " << temperature << " step " << step;
            ++compared;
          }
        }
      }
    }
  }
  EXPECT_EQ(compared, 5 * 3 * 2 * 3 * 6);
}

TEST(Sampler, CandidatesNeedTopKAndNoPenalties) {
  SamplingParams params = plain();
  params.top_k = 0;
  EXPECT_FALSE(Sampler(params, 8).samples_from_top_k());
  params.top_k = 4;
  params.repetition_penalty = 1.2f;
  Sampler penalized(params, 8);
  EXPECT_FALSE(penalized.samples_from_top_k());
  const std::vector<int32_t> ids{1, 2};
  const std::vector<float> logits{0.5f, 0.25f};
  EXPECT_NE(error_of([&] { penalized.sample_candidates(ids, logits); }).find("no penalties"), std::string::npos);
  params.repetition_penalty = 1.0f;
  Sampler sampler(params, 8);
  EXPECT_NE(error_of([&] { sampler.sample_candidates({}, {}); }).find("every token is masked"), std::string::npos);
  const std::vector<int32_t> outside{1, 8};
  EXPECT_NE(error_of([&] { sampler.sample_candidates(outside, logits); }).find("candidate 1 = 8"), std::string::npos);
  const std::vector<float> nan_logit{0.5f, std::nanf("")};
  EXPECT_NE(error_of([&] { sampler.sample_candidates(ids, nan_logit); }).find("candidate logit 1"),
            std::string::npos);
}

// The reference selection: ties with the k-th value kept, -inf and excluded ids left out (a NaN there is no error),
// a NaN or +inf elsewhere reported.
TEST(Sampler, SelectTopLogitsReference) {
  const std::vector<float> row{1.0f, 3.0f, 2.0f, 3.0f, 2.0f, -kInf, std::nanf(""), 2.0f, -0.0f, 0.0f};
  const std::vector<int32_t> excluded{6};
  TopLogits top{.k = 3};
  select_top_logits(row.data(), int64_t(row.size()), excluded, top);
  EXPECT_FALSE(top.bad);
  EXPECT_EQ(top.ids, (std::vector<int32_t>{1, 2, 3, 4, 7}));  // 3, 3, then every 2
  top.k = 9;
  select_top_logits(row.data(), int64_t(row.size()), excluded, top);
  EXPECT_EQ(top.ids, (std::vector<int32_t>{0, 1, 2, 3, 4, 7, 8, 9}));  // only 8 finite ones
  top.k = 7;
  select_top_logits(row.data(), int64_t(row.size()), excluded, top);
  EXPECT_EQ(top.ids, (std::vector<int32_t>{0, 1, 2, 3, 4, 7, 8, 9}));  // -0 and +0 tie
  select_top_logits(row.data(), int64_t(row.size()), {}, top);
  EXPECT_TRUE(top.bad);
}

}  // namespace
}  // namespace ug
