// response_format through the scheduler on the tiny random model (real tokenizer): its output is
// gibberish, so a constrained reply that still parses and validates is a strong end-to-end check.
// Greedy and sampled, batched equals the single-sequence Generator, stop ids only once complete.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "json_test_util.h"
#include "runtime/scheduler.h"
#include "tiny_engine.h"

namespace ug {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

struct Reply {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<int32_t> ids;
  std::string text;
  bool done = false;
  SequenceResult result;

  SequenceCallbacks callbacks() {
    return {.on_token =
                [this](const TokenEvent& e) {
                  std::lock_guard lk(mu);
                  ids.push_back(e.id);
                  text += e.text;
                },
            .on_done =
                [this](const SequenceResult& r) {
                  std::lock_guard lk(mu);
                  result = r;
                  text += r.tail_text;
                  done = true;
                  cv.notify_all();
                }};
  }
  void wait() {
    std::unique_lock lk(mu);
    ASSERT_TRUE(cv.wait_for(lk, 120s, [&] { return done; }));
  }
};

const char* kPersonSchema = R"({"type":"object","properties":{
    "name":{"type":"string","maxLength":8},"age":{"type":"integer"},
    "tags":{"type":"array","items":{"enum":["a","b","c"]},"maxItems":3},
    "ok":{"type":"boolean"},"score":{"type":["number","null"]},
    "pet":{"anyOf":[{"$ref":"#/$defs/pet"},{"type":"null"}]}},
  "required":["name","age","tags","ok"],
  "$defs":{"pet":{"type":"object","properties":{"kind":{"enum":["cat","dog"]},
    "legs":{"type":"integer"}},"required":["kind"]}}})";

class JsonSchedulerTest : public test::TinyEngineSuite<JsonSchedulerTest, 9> {
 protected:
  PromptInput prompt() const {
    PromptInput p;
    p.tokens = engine_->tokenizer->encode(
        "<bos><|turn>user\nDescribe a person as JSON<turn|>\n<|turn>model\n");
    return p;
  }
  static SamplingParams sampling(float temperature, uint64_t seed) {
    SamplingParams s;
    s.temperature = temperature;
    s.top_k = 0;
    s.top_p = 1;
    s.seed = seed;
    return s;
  }
  // Greedy first, then sampled at temperature 1 with seeds seed0 + 1, seed0 + 2, ...
  static std::vector<SamplingParams> greedy_then_sampled(size_t n, uint64_t seed0) {
    std::vector<SamplingParams> params;
    for (size_t i = 0; i < n; ++i) params.push_back(sampling(i == 0 ? 0.0f : 1.0f, seed0 + i));
    return params;
  }
  // One constrained request per params, all submitted to one scheduler (so batched); waits for every reply.
  std::vector<Reply> run_batched(std::shared_ptr<const JsonGrammar> grammar, const std::vector<SamplingParams>& params,
                                 int64_t max_new_tokens, SchedulerOptions options = {}) {
    std::vector<Reply> runs(params.size());
    Scheduler sched(*engine_, options);
    for (size_t i = 0; i < params.size(); ++i)
      sched.submit({.prompt = prompt(),
                    .sampling = params[i],
                    .max_new_tokens = max_new_tokens,
                    .stop_ids = stops,
                    .constraint = {.json = grammar}},
                   runs[i].callbacks());
    for (auto& r : runs) r.wait();
    return runs;
  }
  const std::vector<int32_t> stops = {1, 106};
};

TEST_F(JsonSchedulerTest, SchemaRepliesParseAndValidateGreedyAndSampled) {
  const json doc = json::parse(kPersonSchema);
  auto grammar = JsonGrammar::from_schema(doc, "schema");
  std::vector<Reply> runs = run_batched(grammar, greedy_then_sampled(6, 100), 400);
  for (auto& r : runs) {
    ASSERT_TRUE(r.result.error.empty()) << r.result.error;
    ASSERT_EQ(r.result.finish, FinishReason::Stop) << r.text;
    EXPECT_TRUE(r.ids.back() == 1 || r.ids.back() == 106);
    EXPECT_TRUE(test::parses_and_validates(r.text, doc));
  }
  std::printf("greedy reply of the random model: %s\n", runs[0].text.c_str());
}

TEST_F(JsonSchedulerTest, JsonObjectIsAViablePrefixWhenCutAndAnObjectWhenComplete) {
  auto grammar = JsonGrammar::any_object();
  JsonMatcher m(*grammar);
  std::vector<Reply> runs = run_batched(grammar, greedy_then_sampled(4, 7), 60);
  for (auto& r : runs) {
    ASSERT_TRUE(r.result.error.empty()) << r.result.error;
    JsonStackSet s = m.advance(m.initial(), r.text);
    EXPECT_FALSE(s.empty()) << r.text;
    if (r.result.finish == FinishReason::Stop) {
      EXPECT_TRUE(test::parses_and_validates(r.text, {{"type", "object"}}));
    } else {
      EXPECT_EQ(r.result.finish, FinishReason::Length);
    }
  }
}

TEST_F(JsonSchedulerTest, BatchedEqualsGeneratorForGreedyAndSeeded) {
  auto grammar = test::schema(kPersonSchema);
  JsonConstraintFactory factory(*engine_->tokenizer);
  std::vector<std::vector<int32_t>> expected;
  const std::vector<SamplingParams> params = {sampling(0, 0), sampling(1, 5), sampling(0.7f, 9)};
  for (const SamplingParams& s : params) {
    auto c = factory.make({.json = grammar}, stops);
    KvCache cache(engine_->model->config.text);
    std::vector<int32_t> history;
    Generator g(*engine_->decoder, &*engine_->tokenizer);
    expected.push_back(g.generate({.prompt = prompt().tokens,
                                   .sampling = s,
                                   .max_new_tokens = 120,
                                   .stop_ids = stops,
                                   .constraint = c.get()},
                                  cache, history)
                           .tokens);
  }
  std::vector<Reply> runs = run_batched(grammar, params, 120, {.max_step_tokens = 8});
  for (size_t i = 0; i < runs.size(); ++i) EXPECT_EQ(runs[i].ids, expected[i]) << i;
}

}  // namespace
}  // namespace ug
