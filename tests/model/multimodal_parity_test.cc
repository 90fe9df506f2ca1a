// Vision and audio embedders + sequence assembly + variant-A attention vs HF transformers 5.17
// (fixture case image_audio: two images of 60 and 63 patches and 33 audio frames in one prompt).
// The patches and frames are HF's own preprocessing outputs (tests/data/preprocess), so this checks
// everything after preprocessing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/thread_pool.h"
#include "io/npy.h"
#include "model/decoder.h"
#include "model/embedders.h"
#include "model/image_audio_fixture.h"
#include "model/loaded_model.h"
#include "test_util.h"

namespace ug {
namespace {

using test::assemble;
using test::Assembled;

TEST(Multimodal, BlockIdsFollowImageRuns) {
  MultimodalTokens t{.image = 7, .video = 8, .audio = 9};
  std::vector<int32_t> ids{1, 7, 7, 2, 8, 8, 8, 9, 9, 7};
  EXPECT_EQ(block_ids_for(ids, t), (std::vector<int32_t>{-1, 0, 0, -1, 1, 1, 1, -1, -1, 2}));
}

TEST(Multimodal, EmbeddingsAfterScatterMatchHF) {
  auto m = load_model(test::data_path("tiny_kv_eq/model-f32"));
  Assembled a = assemble(*m);
  auto ref = npy_as_f32(read_npy(test::data_path("tiny_kv_eq/image_audio/hidden_states_f32.npy")));
  const int64_t D = m->config.text.hidden_size, n = int64_t(a.ids.size());
  Decoder decoder(m->config, *m->weights, ThreadPool::global());
  KvCache cache(m->config.text);
  std::vector<float> logits;
  float max_diff = -1;
  decoder.forward({.token_ids = a.ids, .embeddings_override = a.rows, .block_ids = a.block_ids}, cache,
                  LogitsMode::None, logits, [&](std::string_view name, int64_t first, int64_t count, const float* h) {
                    if (name != "embeddings") return;
                    for (int64_t i = 0; i < count * D; ++i)
                      max_diff = std::max(max_diff, std::fabs(h[i] - ref[size_t(first * D + i)]));
                  });
  ASSERT_GE(max_diff, 0);
  EXPECT_LE(max_diff, 1e-4f);
  EXPECT_EQ(cache.size(), n);
}

struct Case {
  const char* model;
  const char* ref;
  float tolerance;
  bool text_only;  // compare text positions only
};

class MultimodalLogits : public ::testing::TestWithParam<Case> {};

TEST_P(MultimodalLogits, MatchHF) {
  const Case c = GetParam();
  auto m = load_model(test::data_path(std::string("tiny_kv_eq/") + c.model));
  Assembled a = assemble(*m);
  auto ref = npy_as_f32(read_npy(test::data_path(std::string("tiny_kv_eq/image_audio/") + c.ref)));
  const int64_t V = m->config.text.vocab_size;
  for (int64_t chunk : {int64_t(256), int64_t(16)}) {  // 16: chunks end inside images and get extended
    Decoder decoder(m->config, *m->weights, ThreadPool::global(), {.max_chunk = chunk});
    KvCache cache(m->config.text);
    std::vector<float> logits;
    decoder.forward({.token_ids = a.ids, .embeddings_override = a.rows, .block_ids = a.block_ids}, cache,
                    LogitsMode::All, logits);
    ASSERT_EQ(logits.size(), ref.size());
    float max_diff = 0;
    for (size_t t = 0; t < a.ids.size(); ++t) {
      if (c.text_only && a.types[t] != 0) continue;
      for (int64_t v = 0; v < V; ++v)
        max_diff = std::max(max_diff, std::fabs(logits[t * size_t(V) + size_t(v)] - ref[t * size_t(V) + size_t(v)]));
    }
    EXPECT_LE(max_diff, c.tolerance) << c.model << " chunk " << chunk;
  }
}

INSTANTIATE_TEST_SUITE_P(ImageAudio, MultimodalLogits,
                         ::testing::Values(Case{"model-f32", "logits_f32.npy", 1e-3f, false},
                                           Case{"model-bf16", "logits_bf16w_f32.npy", 1e-2f, true}));

}  // namespace
}  // namespace ug
