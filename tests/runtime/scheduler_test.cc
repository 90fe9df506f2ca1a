// Continuous batching: sequences run together give exactly what each gives alone (Generator), sampling is
// reproducible whatever the batch mix, cancellation / deadlines / queue limits / shutdown behave, and the
// prefix cache serves multi-turn conversations (including sliding-window rollback and media).
#include "runtime/scheduler.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>

#include "model/presets.h"
#include "model/random_checkpoint.h"
#include "runtime/engine.h"
#include "test_util.h"
#include "tiny_engine.h"

namespace ug {
namespace {

using namespace std::chrono_literals;

// Collects one sequence's callbacks (called on the scheduler thread).
struct Collector {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<TokenEvent> events;
  int done_calls = 0;
  SequenceResult result;
  std::function<void(const TokenEvent&)> extra_on_token;

  SequenceCallbacks callbacks() {
    return {.on_token =
                [this](const TokenEvent& e) {
                  if (extra_on_token) extra_on_token(e);
                  std::lock_guard lk(mu);
                  events.push_back(e);
                  cv.notify_all();
                },
            .on_done =
                [this](const SequenceResult& r) {
                  std::lock_guard lk(mu);
                  result = r;
                  ++done_calls;
                  cv.notify_all();
                }};
  }
  void wait_done() {
    std::unique_lock lk(mu);
    ASSERT_TRUE(cv.wait_for(lk, 60s, [&] { return done_calls > 0; })) << "sequence never finished";
  }
  void wait_tokens(size_t n) {
    std::unique_lock lk(mu);
    ASSERT_TRUE(cv.wait_for(lk, 60s, [&] { return events.size() >= n || done_calls > 0; }));
  }
  std::vector<int32_t> ids() {
    std::lock_guard lk(mu);
    std::vector<int32_t> v;
    for (const auto& e : events) v.push_back(e.id);
    return v;
  }
  std::string text() {
    std::lock_guard lk(mu);
    std::string s;
    for (const auto& e : events) s += e.text;
    return s + result.tail_text;
  }
};

SamplingParams greedy() {
  SamplingParams s;
  s.temperature = 0;
  return s;
}

SamplingParams sampled(uint64_t seed) {
  SamplingParams s;
  s.temperature = 1.0f;
  s.top_k = 40;
  s.top_p = 0.9f;
  s.seed = seed;
  return s;
}

PromptInput text_prompt(std::vector<int32_t> ids) {
  PromptInput p;
  p.tokens = std::move(ids);
  return p;
}

std::vector<int32_t> random_ids(std::mt19937& rng, int n) {
  std::uniform_int_distribution<int32_t> d(3, 999);
  std::vector<int32_t> v;
  for (int i = 0; i < n; ++i) v.push_back(d(rng));
  return v;
}

// What the single-sequence Generator produces for the prompt (the reference).
GenerationResult alone(Engine& e, const PromptInput& p, const SamplingParams& s, int64_t max_new,
                       std::vector<int32_t> stop_ids = {}, std::vector<std::string> stop_strings = {}) {
  KvCache cache(e.model->config.text);
  std::vector<int32_t> history;
  Generator g(*e.decoder, e.tokenizer ? &*e.tokenizer : nullptr);
  auto rows = p.override_rows(0, p.size(), e.model->config.text.hidden_size);
  GenerationRequest req{.prompt = p.tokens,
                        .sampling = s,
                        .max_new_tokens = max_new,
                        .stop_ids = std::move(stop_ids),
                        .stop_strings = std::move(stop_strings),
                        .block_ids = p.block_ids,
                        .embeddings_override = p.media.empty() ? std::span<const float* const>{} : rows};
  return g.generate(req, cache, history);
}

class SchedulerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { engine_ = load_engine(test::data_path("tiny_kv_eq/model-f32"), {}, false).release(); }
  static void TearDownTestSuite() { delete engine_; }
  static Engine* engine_;
};
Engine* SchedulerTest::engine_ = nullptr;

// Greedy sequences take the backend's argmax (no logits row to the host): suppress_tokens must still never be
// chosen, and the result must equal the Sampler's greedy choice in the single-sequence Generator.
TEST_F(SchedulerTest, GreedyOnTheBackendHonoursSuppressTokens) {
  std::mt19937 rng(7);
  const PromptInput prompt = text_prompt(random_ids(rng, 12));
  const auto free_run = alone(*engine_, prompt, greedy(), 12).tokens;
  SamplingParams suppressed = greedy();
  suppressed.suppress_tokens = {free_run[0], free_run[1], free_run[5]};  // what greedy would have picked
  const auto expected = alone(*engine_, prompt, suppressed, 12).tokens;
  ASSERT_NE(expected, free_run);
  Collector run;
  {
    Scheduler sched(*engine_, {});
    sched.submit({.prompt = prompt, .sampling = suppressed, .max_new_tokens = 12}, run.callbacks());
    run.wait_done();
  }
  EXPECT_EQ(run.ids(), expected);
  for (int32_t id : run.ids())
    for (int32_t banned : suppressed.suppress_tokens) EXPECT_NE(id, banned);
}

TEST_F(SchedulerTest, ConcurrentGreedyEqualsAlone) {
  std::mt19937 rng(1);
  std::vector<PromptInput> prompts;
  for (int n : {3, 17, 40, 9, 70}) prompts.push_back(text_prompt(random_ids(rng, n)));
  std::vector<std::vector<int32_t>> expected;
  for (const auto& p : prompts) expected.push_back(alone(*engine_, p, greedy(), 20).tokens);
  std::vector<Collector> runs(prompts.size());
  {
    Scheduler sched(*engine_, {.max_step_tokens = 16});
    for (size_t i = 0; i < prompts.size(); ++i)
      sched.submit({.prompt = prompts[i], .sampling = greedy(), .max_new_tokens = 20}, runs[i].callbacks());
    for (auto& r : runs) r.wait_done();
    const SchedulerStats st = sched.stats();
    EXPECT_GT(st.steps, 20);
    EXPECT_EQ(st.generated_tokens_total, int64_t(20 * prompts.size()));
    EXPECT_GT(st.forward_seconds, 0.0);
    EXPECT_GE(st.step_seconds, st.forward_seconds);
    // The phases are parts of the step time, each measured.
    EXPECT_GT(st.batch_seconds, 0.0);
    EXPECT_GT(st.stream_seconds, 0.0);
    EXPECT_LE(st.admit_seconds + st.batch_seconds + st.forward_seconds + st.sample_seconds + st.stream_seconds,
              st.step_seconds * (1 + 1e-9));
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(runs[i].ids(), expected[i]) << "sequence " << i;
    EXPECT_EQ(runs[i].done_calls, 1);
    EXPECT_EQ(runs[i].result.finish, FinishReason::Length);
    EXPECT_EQ(runs[i].result.generated_tokens, 20);
    EXPECT_EQ(runs[i].result.prompt_tokens, prompts[i].size());
  }
}

TEST_F(SchedulerTest, SeededSamplingDoesNotDependOnBatchMix) {
  std::mt19937 rng(2);
  PromptInput target = text_prompt(random_ids(rng, 25));
  auto expected = alone(*engine_, target, sampled(77), 30).tokens;
  for (int others : {0, 3}) {
    std::vector<Collector> runs(size_t(others) + 1);
    {
      Scheduler sched(*engine_, {.max_step_tokens = 32, .prefix_cache = false});
      for (int i = 0; i < others; ++i)
        sched.submit({.prompt = text_prompt(random_ids(rng, 10 + 13 * i)),
                      .sampling = sampled(uint64_t(i)),
                      .max_new_tokens = 15 + 5 * i},
                     runs[size_t(i) + 1].callbacks());
      sched.submit({.prompt = target, .sampling = sampled(77), .max_new_tokens = 30}, runs[0].callbacks());
      runs[0].wait_done();
    }
    EXPECT_EQ(runs[0].ids(), expected) << others << " other sequences";
  }
}

// The Generator's decode steps take the backend's argmax / top-k candidates: the same tokens as sampling every
// whole row of logits on the host.
TEST_F(SchedulerTest, GeneratorDrawsAsFromTheWholeRow) {
  std::mt19937 rng(9);
  const PromptInput prompt = text_prompt(random_ids(rng, 21));
  for (const SamplingParams& params : {sampled(31), greedy()}) {
    const auto got = alone(*engine_, prompt, params, 25).tokens;
    KvCache cache(engine_->model->config.text);
    std::vector<float> logits;
    engine_->decoder->forward({.token_ids = prompt.tokens}, cache, LogitsMode::Last, logits);
    Sampler sampler(params, int32_t(logits.size()));
    std::vector<int32_t> want;
    for (int step = 0; step < 25; ++step) {
      want.push_back(sampler.sample(logits, prompt.tokens, want));
      engine_->decoder->forward({.token_ids = {&want.back(), 1}}, cache, LogitsMode::Last, logits);
    }
    EXPECT_EQ(got, want) << "temperature " << params.temperature;
  }
}

TEST_F(SchedulerTest, StopIdsAndLogprobs) {
  std::mt19937 rng(3);
  PromptInput p = text_prompt(random_ids(rng, 12));
  auto ref = alone(*engine_, p, greedy(), 10).tokens;
  Collector run;
  {
    Scheduler sched(*engine_, {});
    sched.submit({.prompt = p, .sampling = greedy(), .max_new_tokens = 10, .stop_ids = {ref[3]}, .top_logprobs = 3},
                 run.callbacks());
    run.wait_done();
  }
  // The first occurrence of ref[3] ends the reply (it may occur earlier than index 3).
  size_t stop_at = size_t(std::find(ref.begin(), ref.end(), ref[3]) - ref.begin());
  EXPECT_EQ(run.ids(), std::vector<int32_t>(ref.begin(), ref.begin() + int64_t(stop_at) + 1));
  EXPECT_EQ(run.result.finish, FinishReason::Stop);
  for (const auto& e : run.events) {
    ASSERT_EQ(e.top.size(), 3u);
    EXPECT_EQ(e.top[0].first, e.id);  // greedy: the chosen token is the most likely one
    EXPECT_FLOAT_EQ(e.top[0].second, e.logprob);
    EXPECT_LE(e.logprob, 0.0f);
    EXPECT_GE(e.top[0].second, e.top[1].second);
    EXPECT_GE(e.top[1].second, e.top[2].second);
  }
}

TEST_F(SchedulerTest, CancelFreesKvAndCallsOnDoneOnce) {
  std::mt19937 rng(4);
  Collector run, queued;
  Scheduler sched(*engine_, {.max_running = 1});
  const auto baseline = sched.stats();
  uint64_t id = sched.submit({.prompt = text_prompt(random_ids(rng, 20)), .sampling = greedy(), .max_new_tokens = 3000},
                             run.callbacks());
  uint64_t id2 = sched.submit({.prompt = text_prompt(random_ids(rng, 20)), .sampling = greedy()}, queued.callbacks());
  run.wait_tokens(3);
  EXPECT_GT(sched.stats().kv_bytes_used, baseline.kv_bytes_used);
  EXPECT_GT(sched.stats().kv_bytes_sequences, 0);
  sched.cancel(id2);  // still waiting (max_running = 1)
  sched.cancel(id);
  sched.cancel(id);  // twice: still one on_done
  run.wait_done();
  queued.wait_done();
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(run.done_calls, 1);
  EXPECT_EQ(run.result.finish, FinishReason::Cancelled);
  EXPECT_EQ(run.result.error, "");
  EXPECT_LT(run.result.generated_tokens, 3000);
  EXPECT_EQ(queued.done_calls, 1);
  EXPECT_EQ(queued.result.finish, FinishReason::Cancelled);
  EXPECT_EQ(queued.result.generated_tokens, 0);
  auto st = sched.stats();
  EXPECT_EQ(st.kv_bytes_used, baseline.kv_bytes_used);  // cancelled sequences are not kept
  EXPECT_EQ(st.kv_bytes_sequences, 0);
  EXPECT_EQ(st.kv_bytes_used, st.kv_bytes_sequences + st.kv_bytes_prefix_cache);
  EXPECT_EQ(st.running, 0);
  EXPECT_EQ(st.waiting, 0);
}

TEST_F(SchedulerTest, QueueFullAndRejectedRequests) {
  std::mt19937 rng(5);
  Collector first;
  std::vector<Collector> queued(2);
  Scheduler sched(*engine_, {.max_running = 1, .max_waiting = 2});
  sched.submit({.prompt = text_prompt(random_ids(rng, 8)), .sampling = greedy(), .max_new_tokens = 3000},
               first.callbacks());
  first.wait_tokens(1);  // running now; the next two wait
  for (auto& q : queued) sched.submit({.prompt = text_prompt(random_ids(rng, 8)), .sampling = greedy()}, q.callbacks());
  Collector refused;
  EXPECT_THROW(sched.submit({.prompt = text_prompt(random_ids(rng, 8)), .sampling = greedy()}, refused.callbacks()),
               QueueFull);
  // Invalid requests throw ug::Error at once.
  EXPECT_THROW(sched.submit({.prompt = text_prompt({5, 2000})}, {}), Error);  // id outside the vocabulary
  EXPECT_THROW(sched.submit({.prompt = text_prompt(std::vector<int32_t>(5000, 7))}, {}), Error);  // context
  EXPECT_THROW(sched.submit({.prompt = text_prompt({5}), .stop_strings = {"x"}}, {}), Error);     // no tokenizer
  EXPECT_THROW(sched.submit({.prompt = text_prompt({5}), .top_logprobs = 21}, {}), Error);
  SamplingParams bad;
  bad.temperature = -1;
  EXPECT_THROW(sched.submit({.prompt = text_prompt({5}), .sampling = bad}, {}), Error);
  sched.shutdown(false);
  for (auto* r : {&first, &queued[0], &queued[1]}) {
    EXPECT_EQ(r->done_calls, 1);
    EXPECT_EQ(r->result.finish, FinishReason::Cancelled);
  }
  EXPECT_EQ(refused.done_calls, 0);
  EXPECT_THROW(sched.submit({.prompt = text_prompt({5})}, {}), Error);  // after shutdown
}

TEST_F(SchedulerTest, RequestLargerThanTheKvBudgetIsRejected) {
  const size_t one = KvCache::bytes_for(engine_->model->config.text, 1024, 100);
  Scheduler sched(*engine_, {.kv_budget_bytes = int64_t(one)});
  EXPECT_NO_THROW(sched.submit({.prompt = text_prompt(std::vector<int32_t>(50, 7)), .max_new_tokens = 50}, {}));
  try {
    sched.submit({.prompt = text_prompt(std::vector<int32_t>(50, 7)), .max_new_tokens = 51}, {});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("KV budget"), std::string::npos) << e.what();
  }
}

TEST_F(SchedulerTest, KvBudgetMakesRequestsWaitNotFail) {
  // Room for one sequence at a time: both finish, one after the other, with the right tokens.
  std::mt19937 rng(6);
  PromptInput a = text_prompt(random_ids(rng, 30)), b = text_prompt(random_ids(rng, 30));
  auto ea = alone(*engine_, a, greedy(), 20).tokens, eb = alone(*engine_, b, greedy(), 20).tokens;
  const size_t one = KvCache::bytes_for(engine_->model->config.text, 1024, 50);
  Collector ra, rb;
  {
    Scheduler sched(*engine_, {.kv_budget_bytes = int64_t(one + one / 2)});
    sched.submit({.prompt = a, .sampling = greedy(), .max_new_tokens = 20}, ra.callbacks());
    sched.submit({.prompt = b, .sampling = greedy(), .max_new_tokens = 20}, rb.callbacks());
    ra.wait_done();
    rb.wait_done();
    EXPECT_LE(sched.stats().kv_bytes_used, sched.stats().kv_bytes_budget);
  }
  EXPECT_EQ(ra.ids(), ea);
  EXPECT_EQ(rb.ids(), eb);
  EXPECT_GT(rb.result.queue_seconds, 0.0);
}

TEST_F(SchedulerTest, DeadlineCancelsWithTimeout) {
  std::mt19937 rng(7);
  Collector slow, late;
  slow.extra_on_token = [](const TokenEvent&) { std::this_thread::sleep_for(1ms); };
  Scheduler sched(*engine_, {});
  sched.submit({.prompt = text_prompt(random_ids(rng, 10)),
                .sampling = greedy(),
                .max_new_tokens = 4000,
                .deadline = std::chrono::steady_clock::now() + 50ms},
               slow.callbacks());
  sched.submit({.prompt = text_prompt(random_ids(rng, 10)),
                .sampling = greedy(),
                .deadline = std::chrono::steady_clock::now() - 1s},
               late.callbacks());
  slow.wait_done();
  late.wait_done();
  EXPECT_EQ(slow.result.finish, FinishReason::Cancelled);
  EXPECT_EQ(slow.result.error, "timeout");
  EXPECT_GT(slow.result.generated_tokens, 0);
  EXPECT_EQ(late.result.finish, FinishReason::Cancelled);
  EXPECT_EQ(late.result.error, "timeout");
}

TEST_F(SchedulerTest, ShutdownFinishingOrCancellingRunningSequences) {
  std::mt19937 rng(8);
  std::vector<Collector> runs(3);
  {
    Scheduler sched(*engine_, {});
    for (auto& r : runs)
      sched.submit({.prompt = text_prompt(random_ids(rng, 10)), .sampling = greedy(), .max_new_tokens = 20},
                   r.callbacks());
    for (auto& r : runs) r.wait_tokens(1);  // all running (waiting ones would be cancelled)
    sched.shutdown(true);
  }
  for (auto& r : runs) {
    EXPECT_EQ(r.done_calls, 1);
    EXPECT_EQ(r.result.finish, FinishReason::Length);
    EXPECT_EQ(r.result.generated_tokens, 20);
  }
  std::vector<Collector> runs2(3);
  {
    Scheduler sched(*engine_, {});
    for (auto& r : runs2)
      sched.submit({.prompt = text_prompt(random_ids(rng, 10)), .sampling = greedy(), .max_new_tokens = 4000},
                   r.callbacks());
    runs2[0].wait_tokens(2);
  }  // the destructor cancels
  for (auto& r : runs2) {
    EXPECT_EQ(r.done_calls, 1);
    EXPECT_EQ(r.result.finish, FinishReason::Cancelled);
  }
}

// The agent loop: every turn re-sends the whole history (previous prompt + reply + new tokens).
TEST_F(SchedulerTest, MultiTurnConversationOnlyComputesNewTokens) {
  std::mt19937 rng(9);
  std::vector<PromptInput> prompts;
  std::vector<std::vector<int32_t>> replies;
  std::vector<SequenceResult> results;
  {
    Scheduler sched(*engine_, {});
    PromptInput p = text_prompt(random_ids(rng, 30));
    for (int turn = 0; turn < 10; ++turn) {
      Collector run;
      sched.submit({.prompt = p, .sampling = greedy(), .max_new_tokens = 12}, run.callbacks());
      run.wait_done();
      prompts.push_back(p);
      replies.push_back(run.ids());
      results.push_back(run.result);
      p.tokens.insert(p.tokens.end(), replies.back().begin(), replies.back().end());
      auto more = random_ids(rng, 7);
      p.tokens.insert(p.tokens.end(), more.begin(), more.end());
    }
    EXPECT_EQ(sched.stats().prefix_cache_entries, 1);
    EXPECT_EQ(sched.stats().kv_bytes_sequences, 0);  // idle: only the prefix cache holds KV
    EXPECT_GT(sched.stats().kv_bytes_prefix_cache, 0);
  }
  for (size_t t = 0; t < prompts.size(); ++t) {
    // Cached: the previous prompt and reply except the reply's last token, which never entered the cache.
    int64_t expected_cached = t == 0 ? 0 : prompts[t - 1].size() + int64_t(replies[t - 1].size()) - 1;
    EXPECT_EQ(results[t].cached_prompt_tokens, expected_cached) << "turn " << t;
    EXPECT_EQ(replies[t], alone(*engine_, prompts[t], greedy(), 12).tokens) << "turn " << t;
  }
  EXPECT_GT(prompts.back().size(), 200);  // far past the sliding window (8)
}

// A prompt that is entirely cached still computes its last token (for the logits).
TEST_F(SchedulerTest, IdenticalPromptRecomputesOneToken) {
  std::mt19937 rng(14);
  PromptInput p = text_prompt(random_ids(rng, 50));
  Collector r1, r2;
  {
    Scheduler sched(*engine_, {});
    sched.submit({.prompt = p, .sampling = greedy(), .max_new_tokens = 5}, r1.callbacks());
    r1.wait_done();
    sched.submit({.prompt = p, .sampling = greedy(), .max_new_tokens = 5}, r2.callbacks());
    r2.wait_done();
    auto st = sched.stats();
    EXPECT_EQ(st.prompt_tokens_total, 100);
    EXPECT_EQ(st.prompt_tokens_cached, 49);
  }
  EXPECT_EQ(r2.result.cached_prompt_tokens, 49);
  EXPECT_EQ(r1.ids(), r2.ids());
}

// Two conversations sharing a system prompt: the second clones the first's cached entry instead of taking
// it, so the first conversation's next turn still hits.
TEST_F(SchedulerTest, BranchesShareASystemPromptWithoutStealingTheEntry) {
  std::mt19937 rng(15);
  auto system = random_ids(rng, 40);
  PromptInput a = text_prompt(system), b = text_prompt(system);
  auto ta = random_ids(rng, 30), tb = random_ids(rng, 20);
  a.tokens.insert(a.tokens.end(), ta.begin(), ta.end());
  b.tokens.insert(b.tokens.end(), tb.begin(), tb.end());
  Collector ra, rb, ra2;
  PromptInput a2;
  {
    Scheduler sched(*engine_, {});
    sched.submit({.prompt = a, .sampling = greedy(), .max_new_tokens = 60}, ra.callbacks());
    ra.wait_done();
    sched.submit({.prompt = b, .sampling = greedy(), .max_new_tokens = 5}, rb.callbacks());
    rb.wait_done();
    a2 = a;
    auto reply = ra.ids();
    a2.tokens.insert(a2.tokens.end(), reply.begin(), reply.end());
    for (int32_t t : {30, 31, 32}) a2.tokens.push_back(t);
    sched.submit({.prompt = a2, .sampling = greedy(), .max_new_tokens = 5}, ra2.callbacks());
    ra2.wait_done();
    EXPECT_EQ(sched.stats().prefix_cache_entries, 2);
  }
  EXPECT_EQ(rb.result.cached_prompt_tokens, 40);
  EXPECT_EQ(ra2.result.cached_prompt_tokens, a.size() + 59);
  EXPECT_EQ(rb.ids(), alone(*engine_, b, greedy(), 5).tokens);
  EXPECT_EQ(ra2.ids(), alone(*engine_, a2, greedy(), 5).tokens);
}

// The chat template may re-render the reply differently near its end: the cache rolls back (within the
// ring slack) to where they differ; beyond the slack it misses.
TEST_F(SchedulerTest, RerenderedReplyRollsBackWithinSlack) {
  std::mt19937 rng(10);
  PromptInput p1 = text_prompt(random_ids(rng, 40));
  Collector r1, r2, r3;
  Scheduler sched(*engine_, {.ring_slack = 6});
  sched.submit({.prompt = p1, .sampling = greedy(), .max_new_tokens = 10}, r1.callbacks());
  r1.wait_done();
  auto reply = r1.ids();
  // Turn 2: the last 3 reply tokens are rendered differently. Cached 49 tokens; prefix 47: rollback 2.
  PromptInput p2 = p1;
  p2.tokens.insert(p2.tokens.end(), reply.begin(), reply.end() - 3);
  for (int32_t t : {11, 12, 13, 14, 15}) p2.tokens.push_back(t);
  sched.submit({.prompt = p2, .sampling = greedy(), .max_new_tokens = 10}, r2.callbacks());
  r2.wait_done();
  EXPECT_EQ(r2.result.cached_prompt_tokens, p1.size() + 7);
  // Turn 3 diverges 19 tokens before the end of the cached 52 + 9 (more than slack 6 + 1): a miss.
  PromptInput p3 = p2;
  p3.tokens.resize(size_t(p2.size() - 10));
  for (int32_t t : {21, 22, 23}) p3.tokens.push_back(t);
  sched.submit({.prompt = p3, .sampling = greedy(), .max_new_tokens = 10}, r3.callbacks());
  r3.wait_done();
  EXPECT_EQ(r3.result.cached_prompt_tokens, 0);
  sched.shutdown(true);
  EXPECT_EQ(r2.ids(), alone(*engine_, p2, greedy(), 10).tokens);
  EXPECT_EQ(r3.ids(), alone(*engine_, p3, greedy(), 10).tokens);
}

TEST_F(SchedulerTest, ConcurrentRequestsShareAPrefixByCloning) {
  std::mt19937 rng(11);
  auto system = random_ids(rng, 60);
  std::vector<PromptInput> prompts;
  for (int i = 0; i < 3; ++i) {
    PromptInput p = text_prompt(system);
    auto tail = random_ids(rng, 5 + i);
    p.tokens.insert(p.tokens.end(), tail.begin(), tail.end());
    prompts.push_back(p);
  }
  std::vector<std::vector<int32_t>> expected;
  for (const auto& p : prompts) expected.push_back(alone(*engine_, p, greedy(), 8).tokens);
  Collector warm;
  std::vector<Collector> runs(3);
  {
    Scheduler sched(*engine_, {});
    sched.submit({.prompt = text_prompt(system), .sampling = greedy(), .max_new_tokens = 1}, warm.callbacks());
    warm.wait_done();
    for (size_t i = 0; i < prompts.size(); ++i)
      sched.submit({.prompt = prompts[i], .sampling = greedy(), .max_new_tokens = 8}, runs[i].callbacks());
    for (auto& r : runs) r.wait_done();
  }
  for (size_t i = 0; i < runs.size(); ++i) {
    EXPECT_EQ(runs[i].ids(), expected[i]) << i;
    // The first takes the cached system prompt; the others clone it from a running sequence (or the entry).
    EXPECT_EQ(runs[i].result.cached_prompt_tokens, int64_t(system.size())) << i;
  }
}

// Media positions are keyed by content hash; a reused prefix never ends inside an image block.
TEST_F(SchedulerTest, MediaPrefixKeysAndBlocks) {
  const auto& cfg = engine_->model->config;
  const int64_t D = cfg.text.hidden_size;
  std::mt19937 rng(12);
  std::normal_distribution<float> nd;
  auto rows = std::make_shared<std::vector<float>>(size_t(6 * D));
  for (auto& v : *rows) v = nd(rng);
  auto with_image = [&](std::vector<int32_t> ids, uint64_t hash) {
    PromptInput p = text_prompt(std::move(ids));
    p.block_ids.assign(p.tokens.size(), -1);
    for (int i = 0; i < 6; ++i) {
      p.tokens[size_t(5 + i)] = int32_t(cfg.tokens.image);
      p.block_ids[size_t(5 + i)] = 0;
    }
    p.media.push_back({.position = 5, .count = 6, .rows = rows, .row_offset = 0, .content_hash = hash});
    return p;
  };
  auto base = random_ids(rng, 16);
  PromptInput p1 = with_image(base, 1);
  PromptInput p2 = p1;  // same image, one more token: everything cached but the last token
  p2.tokens.push_back(17);
  p2.block_ids.push_back(-1);
  PromptInput p3 = with_image(base, 2);  // another image at the same positions
  p3.tokens.push_back(17);
  p3.block_ids.push_back(-1);
  PromptInput p4 = with_image(base, 1);  // shares 9 tokens, the last 4 inside the block: back off to 5
  p4.tokens.resize(9);
  p4.block_ids.resize(9);
  p4.media[0].count = 4;
  Collector r1, r2, r3, r4;
  {
    Scheduler sched(*engine_, {.prefix_cache = true, .ring_slack = 32});
    sched.submit({.prompt = p1, .sampling = greedy(), .max_new_tokens = 1}, r1.callbacks());
    r1.wait_done();
    sched.submit({.prompt = p2, .sampling = greedy(), .max_new_tokens = 4}, r2.callbacks());
    r2.wait_done();
    sched.submit({.prompt = p4, .sampling = greedy(), .max_new_tokens = 4}, r4.callbacks());
    r4.wait_done();
    sched.submit({.prompt = p3, .sampling = greedy(), .max_new_tokens = 4}, r3.callbacks());
    r3.wait_done();
  }
  EXPECT_EQ(r2.result.cached_prompt_tokens, 16);
  EXPECT_EQ(r3.result.cached_prompt_tokens, 5);
  EXPECT_EQ(r4.result.cached_prompt_tokens, 5);
  EXPECT_EQ(r2.ids(), alone(*engine_, p2, greedy(), 4).tokens);
  EXPECT_EQ(r3.ids(), alone(*engine_, p3, greedy(), 4).tokens);
  EXPECT_EQ(r4.ids(), alone(*engine_, p4, greedy(), 4).tokens);
}

// A bidirectional block longer than the step budget is prefilled whole while other sequences decode.
TEST_F(SchedulerTest, BlockLargerThanStepBudget) {
  const auto& cfg = engine_->model->config;
  const int64_t D = cfg.text.hidden_size;
  std::mt19937 rng(13);
  std::normal_distribution<float> nd;
  auto rows = std::make_shared<std::vector<float>>(size_t(12 * D));
  for (auto& v : *rows) v = nd(rng);
  PromptInput img = text_prompt(random_ids(rng, 20));
  img.block_ids.assign(20, -1);
  for (int i = 0; i < 12; ++i) {
    img.tokens[size_t(3 + i)] = int32_t(cfg.tokens.image);
    img.block_ids[size_t(3 + i)] = 0;
  }
  img.media.push_back({.position = 3, .count = 12, .rows = rows, .content_hash = 9});
  PromptInput other = text_prompt(random_ids(rng, 6));
  auto e_img = alone(*engine_, img, greedy(), 6).tokens, e_other = alone(*engine_, other, greedy(), 30).tokens;
  Collector r_img, r_other;
  {
    Scheduler sched(*engine_, {.max_step_tokens = 4});
    sched.submit({.prompt = other, .sampling = greedy(), .max_new_tokens = 30}, r_other.callbacks());
    r_other.wait_tokens(1);
    sched.submit({.prompt = img, .sampling = greedy(), .max_new_tokens = 6}, r_img.callbacks());
    r_img.wait_done();
    r_other.wait_done();
  }
  EXPECT_EQ(r_img.ids(), e_img);
  EXPECT_EQ(r_other.ids(), e_other);
}

// With the real tokenizer (tiny random model): streamed text and stop strings match the Generator.
class SchedulerTextTest : public test::TinyEngineSuite<SchedulerTextTest, 5> {};

TEST_F(SchedulerTextTest, StreamedTextAndStopStringsMatchGenerator) {
  ASSERT_NE(engine_, nullptr) << "tokenizer missing: run scripts/fetch_tokenizer.sh";
  PromptInput p = text_prompt(engine_->tokenizer->encode("<bos><|turn>user\nTell me a story<turn|>\n<|turn>model\n"));
  auto ref = alone(*engine_, p, greedy(), 40);
  ASSERT_GE(ref.text.size(), 12u);
  std::string stop = ref.text.substr(ref.text.size() / 2, 3);
  auto ref_stop = alone(*engine_, p, greedy(), 40, {}, {stop});
  ASSERT_EQ(ref_stop.finish, FinishReason::StopString);
  Collector plain, stopped;
  {
    Scheduler sched(*engine_, {});
    sched.submit({.prompt = p, .sampling = greedy(), .max_new_tokens = 40}, plain.callbacks());
    sched.submit({.prompt = p, .sampling = greedy(), .max_new_tokens = 40, .stop_strings = {stop}},
                 stopped.callbacks());
    plain.wait_done();
    stopped.wait_done();
  }
  EXPECT_EQ(plain.ids(), ref.tokens);
  EXPECT_EQ(plain.text(), ref.text);
  EXPECT_EQ(stopped.text(), ref_stop.text);
  EXPECT_EQ(stopped.result.finish, ref_stop.finish);
  EXPECT_EQ(stopped.ids(), ref_stop.tokens);
}

// A reply that ends at a stop string leaves the cache of exactly the tokens before the stop's last token (which
// never went through the model), and the next turn built on it gives what the Generator gives for the whole
// history.
TEST_F(SchedulerTextTest, StopStringLeavesTheCacheOfTheReplyForTheNextTurn) {
  ASSERT_NE(engine_, nullptr) << "tokenizer missing: run scripts/fetch_tokenizer.sh";
  PromptInput p = text_prompt(engine_->tokenizer->encode("<bos><|turn>user\nTell me a story<turn|>\n<|turn>model\n"));
  auto ref = alone(*engine_, p, greedy(), 40);
  ASSERT_GE(ref.text.size(), 12u);
  const std::string stop = ref.text.substr(ref.text.size() / 2, 3);
  {
    Scheduler sched(*engine_, {});
    Collector stopped;
    sched.submit({.prompt = p, .sampling = greedy(), .max_new_tokens = 40, .stop_strings = {stop}},
                 stopped.callbacks());
    stopped.wait_done();
    ASSERT_EQ(stopped.result.finish, FinishReason::StopString);
    // The next turn: the history with the reply up to its stop, then more user text.
    PromptInput next = p;
    for (int32_t id : stopped.ids()) next.tokens.push_back(id);
    for (int32_t id : engine_->tokenizer->encode("<turn|>\n<|turn>user\nGo on<turn|>\n<|turn>model\n"))
      next.tokens.push_back(id);
    Collector turn;
    sched.submit({.prompt = next, .sampling = greedy(), .max_new_tokens = 8}, turn.callbacks());
    turn.wait_done();
    // Every token of the first request but its last sampled one went through the model and is reused.
    EXPECT_EQ(turn.result.cached_prompt_tokens, p.size() + int64_t(stopped.ids().size()) - 1);
    EXPECT_EQ(turn.ids(), alone(*engine_, next, greedy(), 8).tokens);
    EXPECT_EQ(sched.stats().kv_bytes_sequences, 0);
  }
}

}  // namespace
}  // namespace ug
