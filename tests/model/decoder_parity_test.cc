// Fixture parity: the CPU decoder vs HF transformers 5.17 on the tiny random model (tests/data/tiny_kv_eq).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/thread_pool.h"
#include "io/npy.h"
#include "model/decoder.h"
#include "model/loaded_model.h"
#include "test_util.h"

namespace ug {
namespace {

std::vector<int32_t> load_ids(const std::string& rel) {
  std::vector<int32_t> ids;
  for (int64_t v : npy_as_i64(read_npy(test::data_path(rel)))) ids.push_back(int32_t(v));
  return ids;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

struct Case {
  const char* model;     // model-f32 | model-bf16
  const char* dtype;     // weight precision to run at
  const char* ref;       // reference logits file
  float tolerance;
};

class FullLogits : public ::testing::TestWithParam<std::tuple<const char*, Case>> {};

TEST_P(FullLogits, MatchesHF) {
  auto [case_name, c] = GetParam();
  std::string dir = std::string("tiny_kv_eq/") + case_name + "/";
  WeightLoadOptions opts;
  if (std::string(c.dtype) == "bf16") opts.weight_dtype = DType::BF16;
  auto model = load_model(test::data_path(std::string("tiny_kv_eq/") + c.model), opts);
  auto ids = load_ids(dir + "input_ids.npy");
  // Small chunks exercise the ring buffer and chunk boundaries; results must not depend on them.
  for (int64_t chunk : {int64_t(256), int64_t(7)}) {
    Decoder decoder(model->config, *model->weights, ThreadPool::global(), {.max_chunk = chunk});
    KvCache cache(model->config.text);
    std::vector<float> logits;
    decoder.forward({.token_ids = ids}, cache, LogitsMode::All, logits);
    auto ref = npy_as_f32(read_npy(test::data_path(dir + c.ref)));
    float diff = max_abs_diff(logits, ref);
    EXPECT_LE(diff, c.tolerance) << case_name << " " << c.model << " chunk " << chunk;
  }
}

INSTANTIATE_TEST_SUITE_P(
    TinyKvEq, FullLogits,
    ::testing::Combine(::testing::Values("text_short", "text_long"),
                       ::testing::Values(Case{"model-f32", "f32", "logits_f32.npy", 1e-3f},
                                         Case{"model-bf16", "", "logits_bf16w_f32.npy", 1e-2f},
                                         Case{"model-f32", "bf16", "logits_bf16w_f32.npy", 1e-2f})));

TEST(HiddenStates, EveryLayerMatchesHF) {
  auto model = load_model(test::data_path("tiny_kv_eq/model-f32"));
  auto ids = load_ids("tiny_kv_eq/text_short/input_ids.npy");
  auto ref = read_npy(test::data_path("tiny_kv_eq/text_short/hidden_states_f32.npy"));
  const int64_t L = model->config.text.n_layers(), n = int64_t(ids.size()), D = model->config.text.hidden_size;
  ASSERT_EQ(ref.shape, (std::vector<int64_t>{L + 1, n, D}));
  auto refv = npy_as_f32(ref);
  Decoder decoder(model->config, *model->weights, ThreadPool::global());
  KvCache cache(model->config.text);
  std::vector<float> logits;
  decoder.forward({.token_ids = ids}, cache, LogitsMode::None, logits,
                  [&](std::string_view name, int64_t first, int64_t count, const float* data) {
                    int64_t slot = hf_hidden_state_index(name, L);
                    if (slot < 0) return;
                    float m = 0, scale = 0;
                    for (int64_t i = 0; i < count * D; ++i) {
                      float r = refv[size_t((slot * n + first) * D + i)];
                      m = std::max(m, std::fabs(data[i] - r));
                      scale = std::max(scale, std::fabs(r));
                    }
                    EXPECT_LE(m, 1e-4f * std::max(1.0f, scale)) << name;
                  });
}

// Incremental decode equals HF's cached greedy decode: step logits and ids.
struct GenCase {
  const char* model;
  const char* dtype;
  const char* suffix;  // f32 | bf16w_f32
  float tolerance;
};

class Generate : public ::testing::TestWithParam<GenCase> {};

TEST_P(Generate, StepLogitsAndGreedyIdsMatchHF) {
  const GenCase c = GetParam();
  WeightLoadOptions opts;
  if (std::string(c.dtype) == "bf16") opts.weight_dtype = DType::BF16;
  auto model = load_model(test::data_path(std::string("tiny_kv_eq/") + c.model), opts);
  auto prompt = load_ids("tiny_kv_eq/generate/prompt.npy");
  auto greedy_ref = load_ids(std::string("tiny_kv_eq/generate/greedy_") + c.suffix + ".npy");
  auto step_ref = npy_as_f32(read_npy(test::data_path(std::string("tiny_kv_eq/generate/step_logits_") + c.suffix + ".npy")));
  const int64_t V = model->config.text.vocab_size;
  Decoder decoder(model->config, *model->weights, ThreadPool::global());
  KvCache cache(model->config.text);
  std::vector<float> logits;
  decoder.forward({.token_ids = prompt}, cache, LogitsMode::Last, logits);
  std::vector<int32_t> got;
  for (size_t step = 0; step < greedy_ref.size(); ++step) {
    float m = 0;
    for (int64_t v = 0; v < V; ++v) m = std::max(m, std::fabs(logits[size_t(v)] - step_ref[step * size_t(V) + size_t(v)]));
    EXPECT_LE(m, c.tolerance) << "step " << step;
    int32_t id = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    got.push_back(id);
    int32_t one[1] = {id};
    decoder.forward({.token_ids = one}, cache, LogitsMode::Last, logits);
  }
  EXPECT_EQ(got, greedy_ref);
}

INSTANTIATE_TEST_SUITE_P(TinyKvEq, Generate,
                         ::testing::Values(GenCase{"model-f32", "f32", "f32", 1e-3f},
                                           GenCase{"model-bf16", "", "bf16w_f32", 1e-2f}));

}  // namespace
}  // namespace ug
