// Media files -> decode -> preprocess -> embed -> prompt assembly -> decoder, end to end against HF
// transformers 5.17 (fixture cases image_audio and video, from the media files themselves), plus the prompt
// layout (placeholders expanded as HF's processor does), the embedding cache and located errors.
#include "runtime/multimodal_prompt.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/mapped_file.h"
#include "io/npy.h"
#include "model/decoder.h"
#include "model/presets.h"
#include "model/random_checkpoint.h"
#include "runtime/chat_session.h"
#include "runtime/engine.h"
#include "test_util.h"
#include "tiny_engine.h"

namespace ug {
namespace {

using ::testing::HasSubstr;

std::vector<int32_t> ids_of(const std::string& rel) {
  std::vector<int32_t> ids;
  for (int64_t v : npy_as_i64(read_npy(test::data_path(rel)))) ids.push_back(int32_t(v));
  return ids;
}

MediaSource file(MediaKind kind, const std::string& name) {
  return {.kind = kind, .path = test::data_path("media/" + name)};
}

// Max |logits - ref| over the positions where `keep(position)` holds.
template <typename Keep>
float max_logit_diff(const LoadedModel& m, const PromptInput& input, const std::vector<float>& ref, Keep keep,
                     const std::vector<int64_t>& ref_positions) {
  Decoder decoder(m.config, *m.weights, ThreadPool::global());
  KvCache cache(m.config.text);
  std::vector<float> logits;
  auto rows = input.override_rows(0, input.size(), m.config.text.hidden_size);
  decoder.forward({.token_ids = input.tokens, .embeddings_override = rows, .block_ids = input.block_ids}, cache,
                  LogitsMode::All, logits);
  const int64_t V = m.config.text.vocab_size;
  EXPECT_EQ(int64_t(ref.size()), int64_t(ref_positions.size()) * V);
  float diff = 0;
  for (size_t r = 0; r < ref_positions.size(); ++r) {
    int64_t p = ref_positions[r];
    if (!keep(p)) continue;
    for (int64_t v = 0; v < V; ++v)
      diff = std::max(diff, std::fabs(logits[size_t(p * V + v)] - ref[r * size_t(V) + size_t(v)]));
  }
  return diff;
}

struct ParityCase {
  const char* model;
  const char* ref;
  float tolerance;
  bool text_only;
};

class ImageAudioFromFiles : public ::testing::TestWithParam<ParityCase> {};

// bos, text, gradient.png (60 tokens at budget 70), text, tone_16k_f32.wav (33 frames), text, noise.jpg (63).
TEST_P(ImageAudioFromFiles, MatchesHF) {
  const ParityCase c = GetParam();
  auto m = load_model(test::data_path(std::string("tiny_kv_eq/") + c.model));
  MediaEncoder enc(*m, nullptr, ThreadPool::global(), {.image_tokens = 70});
  std::vector<MediaSource> media{file(MediaKind::Image, "gradient.png"), file(MediaKind::Audio, "tone_16k_f32.wav"),
                                 file(MediaKind::Image, "noise.jpg")};
  PromptInput input = enc.scatter(ids_of("tiny_kv_eq/image_audio/input_ids.npy"), media);
  ASSERT_EQ(input.media.size(), 3u);
  EXPECT_EQ(input.media[0].count, 60);
  EXPECT_EQ(input.media[1].count, 33);
  EXPECT_EQ(input.media[2].count, 63);
  auto types = npy_as_i64(read_npy(test::data_path("tiny_kv_eq/image_audio/mm_token_type_ids.npy")));
  auto ref = npy_as_f32(read_npy(test::data_path(std::string("tiny_kv_eq/image_audio/") + c.ref)));
  std::vector<int64_t> positions(types.size());
  for (size_t i = 0; i < positions.size(); ++i) positions[i] = int64_t(i);
  float diff = max_logit_diff(*m, input, ref, [&](int64_t p) { return !c.text_only || types[size_t(p)] == 0; },
                              positions);
  EXPECT_LE(diff, c.tolerance);
}

INSTANTIATE_TEST_SUITE_P(Fixture, ImageAudioFromFiles,
                         ::testing::Values(ParityCase{"model-f32", "logits_f32.npy", 1e-3f, false},
                                           ParityCase{"model-bf16", "logits_bf16w_f32.npy", 1e-2f, true}));

class VideoFromFile : public ::testing::TestWithParam<ParityCase> {};

// 32 frames sampled from video_ffv1.mkv (40 frames, 8 fps), 63 video tokens each, 2 text tokens before each.
TEST_P(VideoFromFile, MatchesHF) {
  const ParityCase c = GetParam();
  auto m = load_model(test::data_path(std::string("tiny_kv_eq/") + c.model));
  MediaEncoder enc(*m, nullptr, ThreadPool::global(), {.video_frame_tokens = 70});
  PromptInput input = enc.scatter(ids_of("tiny_kv_eq/video/input_ids.npy"), {{file(MediaKind::Video, "video_ffv1.mkv")}});
  EXPECT_EQ(input.media.size(), 32u);  // one span per frame block
  auto ref = npy_as_f32(read_npy(test::data_path(std::string("tiny_kv_eq/video/") + c.ref)));
  auto positions = npy_as_i64(read_npy(test::data_path("tiny_kv_eq/video/logits_positions.npy")));
  float diff = max_logit_diff(*m, input, ref, [](int64_t) { return true; }, positions);
  EXPECT_LE(diff, c.tolerance);
}

INSTANTIATE_TEST_SUITE_P(Fixture, VideoFromFile,
                         ::testing::Values(ParityCase{"model-f32", "logits_f32.npy", 1e-3f, true},
                                           ParityCase{"model-bf16", "logits_bf16w_f32.npy", 1e-2f, true}));

TEST(MediaScatter, CountsMustMatch) {
  auto m = load_model(test::data_path("tiny_kv_eq/model-f32"));
  MediaEncoder enc(*m, nullptr, ThreadPool::global(), {.image_tokens = 70});
  auto ids = ids_of("tiny_kv_eq/image_audio/input_ids.npy");
  std::vector<MediaSource> one_image{file(MediaKind::Image, "gradient.png"), file(MediaKind::Audio, "tone_16k_f32.wav")};
  try {
    enc.scatter(ids, one_image);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("123 image soft token(s) but the media give 60"));
  }
  try {
    enc.scatter(ids, {{file(MediaKind::Image, "no_such_file.png")}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("no_such_file.png"));
  }
}

TEST(MediaCache, SameContentIsEmbeddedOnce) {
  auto m = load_model(test::data_path("tiny_kv_eq/model-f32"));
  MediaEncoder enc(*m, nullptr, ThreadPool::global(), {.image_tokens = 70});
  auto a = enc.encode(file(MediaKind::Image, "gradient.png"));
  // The same bytes under another name (e.g. a later turn re-sending the image as a data URI) hit the cache.
  auto bytes = std::make_shared<std::vector<uint8_t>>();
  {
    MappedFile f(test::data_path("media/gradient.png"));
    bytes->assign(reinterpret_cast<const uint8_t*>(f.data()), reinterpret_cast<const uint8_t*>(f.data()) + f.size());
  }
  auto b = enc.encode({.kind = MediaKind::Image, .bytes = bytes, .name = "request image 1"});
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(enc.cache_hits(), 1);
  // Different preprocessing settings are a different entry.
  auto c = enc.encode({.kind = MediaKind::Image, .bytes = bytes, .image_tokens = 280});
  EXPECT_NE(a.get(), c.get());
  EXPECT_GT(c->n_visual, a->n_visual);
  EXPECT_EQ(enc.cache_misses(), 2);
}

// Prompt layout with the real tokenizer and token ids (tiny random model of the 12B's vocabulary).
class MediaLayout : public test::TinyEngineSuite<MediaLayout, 7> {
 public:
  static EngineOptions engine_options() { return {.media = {.image_tokens = 70}}; }

 protected:
  static int64_t count(const std::vector<int32_t>& ids, int64_t id) { return std::count(ids.begin(), ids.end(), id); }
};

TEST_F(MediaLayout, ImageAndAudioPlaceholdersExpandLikeHF) {
  const Tokenizer& tok = *engine_->tokenizer;
  std::vector<MediaSource> media{file(MediaKind::Image, "gradient.png"), file(MediaKind::Audio, "tone_16k_i16.wav")};
  PromptInput in = engine_->media->assemble_text("<bos>A\n\n<|image|>\n\nB<|audio|>C", media);
  std::string expected = "<bos>A\n\n<|image>" ;
  for (int i = 0; i < 60; ++i) expected += "<|image|>";
  expected += "<image|>\n\nB<|audio>";
  for (int i = 0; i < 33; ++i) expected += "<|audio|>";
  expected += "<audio|>C";
  EXPECT_EQ(in.tokens, tok.encode(expected));
  ASSERT_EQ(in.media.size(), 2u);
  EXPECT_EQ(in.tokens[size_t(in.media[0].position - 1)], 255999);  // <|image>
  EXPECT_EQ(in.media[0].count, 60);
  EXPECT_EQ(in.media[1].count, 33);
  EXPECT_EQ(in.tokens[size_t(in.media[1].position + 33)], 258883);  // <audio|>
  // One bidirectional block for the image, none for audio.
  EXPECT_EQ(in.block_ids[size_t(in.media[0].position)], 0);
  EXPECT_EQ(in.block_ids[size_t(in.media[0].position + 59)], 0);
  EXPECT_EQ(in.block_ids[size_t(in.media[1].position)], -1);
}

TEST_F(MediaLayout, VideoFramesGetTimestampsAndSeparateBlocks) {
  PromptInput in = engine_->media->assemble_text("<|video|>", {{file(MediaKind::Video, "video_ffv1.mkv")}});
  const Tokenizer& tok = *engine_->tokenizer;
  // 32 frames of 40 at 8 fps: indices floor(i * 40 / 32), t = index / 8 -> "00:00 ", ..., "00:04 ".
  std::string text = tok.decode(in.tokens);
  EXPECT_EQ(text.rfind("00:00 <|image><|video|>", 0), 0u) << text.substr(0, 80);
  EXPECT_THAT(text, HasSubstr("<image|> 00:04 <|image>"));
  EXPECT_EQ(count(in.tokens, 258884), 32 * 63);
  EXPECT_EQ(in.media.size(), 32u);
  EXPECT_EQ(*std::max_element(in.block_ids.begin(), in.block_ids.end()), 31);
}

// Placeholder text outside the given media slots (a re-sent reply in which the model generated the token) stays
// that token: its own embedding, no block, as when it was generated.
TEST_F(MediaLayout, PlaceholdersOutsideTheMediaSlotsAreLiteralTokens) {
  const Tokenizer& tok = *engine_->tokenizer;
  const std::string before = "<bos>A<|image|><|image|>B", after = "C<|audio|><|video|>";
  const std::string text = before + "<|image|>" + after;
  PromptInput in = engine_->media->assemble_text(text, std::vector<size_t>{before.size()},
                                                 {{file(MediaKind::Image, "gradient.png")}});
  std::string expected = before + "<|image>";
  for (int i = 0; i < 60; ++i) expected += "<|image|>";
  expected += "<image|>" + after;
  EXPECT_EQ(in.tokens, tok.encode(expected));
  ASSERT_EQ(in.media.size(), 1u);
  EXPECT_EQ(in.media[0].position, 6);  // <bos> A <|image|> <|image|> B <|image>, then the soft tokens
  EXPECT_EQ(in.media[0].count, 60);
  EXPECT_EQ(count(in.tokens, 258880), 62);
  for (int64_t p : {2, 3}) {
    EXPECT_EQ(in.tokens[size_t(p)], 258880);
    EXPECT_EQ(in.block_ids[size_t(p)], -1) << p;
  }
  EXPECT_EQ(in.block_ids[size_t(in.media[0].position)], 0);  // the only block
  EXPECT_EQ(*std::max_element(in.block_ids.begin(), in.block_ids.end()), 0);
  // Without media slots every placeholder is literal; the tokens are the plain encoding.
  PromptInput plain = engine_->media->assemble_text(text, std::vector<size_t>{}, {});
  EXPECT_EQ(plain.tokens, tok.encode(text));
  EXPECT_TRUE(plain.media.empty());
  EXPECT_EQ(*std::max_element(plain.block_ids.begin(), plain.block_ids.end()), -1);
  // A slot must be a placeholder, in order.
  EXPECT_THROW(engine_->media->assemble_text(text, std::vector<size_t>{1}, {{file(MediaKind::Image, "gradient.png")}}),
               Error);
}

TEST_F(MediaLayout, PlaceholderAndMediaMismatchesAreErrors) {
  auto& enc = *engine_->media;
  try {
    enc.assemble_text("<|image|><|image|>", {{file(MediaKind::Image, "gradient.png")}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("more media placeholders"));
  }
  try {
    enc.assemble_text("<|audio|>", {{file(MediaKind::Image, "gradient.png")}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("is image"));
  }
  try {
    enc.assemble_text("no placeholder", {{file(MediaKind::Image, "gradient.png")}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("1 media item(s) given but the prompt has 0"));
  }
}

TEST_F(MediaLayout, ChatTurnWithMediaGeneratesAndKeepsContext) {
  SamplingParams s;
  s.temperature = 0;
  ChatSession chat(*engine_, {.max_new_tokens = 4, .sampling = s});
  std::vector<MediaSource> media{file(MediaKind::Image, "gradient.png"), file(MediaKind::Audio, "tone_16k_f32.wav")};
  EXPECT_THAT(chat.turn_text("Describe.", media), HasSubstr("user\n<|image|><|audio|>Describe.<turn|>"));
  auto r = chat.send("Describe.", {}, media);
  EXPECT_EQ(r.tokens.size(), 4u);
  // The prompt (with 60 + 33 soft tokens) stays in the context; a text-only turn follows.
  EXPECT_GT(chat.history().size(), 60u + 33u);
  auto r2 = chat.send("And now?");
  EXPECT_FALSE(r2.tokens.empty());
}

}  // namespace
}  // namespace ug
