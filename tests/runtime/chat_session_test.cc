// Multi-turn chat: each user turn is appended as template text, the model's reply stays as generated.
#include "runtime/chat_session.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "model/presets.h"
#include "model/random_checkpoint.h"
#include "test_util.h"
#include "tiny_engine.h"

namespace ug {
namespace {

class ChatSessionTest : public test::TinyEngineSuite<ChatSessionTest, 5> {
 protected:
  static ChatOptions greedy(int64_t max_tokens, bool think = false) {
    SamplingParams s;
    s.temperature = 0;
    return {.enable_thinking = think, .max_new_tokens = max_tokens, .sampling = s};
  }
};

TEST_F(ChatSessionTest, TurnsAreAppendedToTheGeneratedTokens) {
  ChatSession chat(*engine_, greedy(5));
  std::string first = chat.turn_text("Hi");
  EXPECT_EQ(first, "<bos><|turn>user\nHi<turn|>\n<|turn>model\n<|channel>thought\n<channel|>");
  auto r1 = chat.send("Hi");
  const Tokenizer& tok = *engine_->tokenizer;
  std::vector<int32_t> expected = tok.encode(first);
  expected.insert(expected.end(), r1.tokens.begin(), r1.tokens.end());
  EXPECT_EQ(chat.history(), expected);

  // The reply hit the token limit, so the next turn first closes the model turn.
  ASSERT_EQ(r1.finish, FinishReason::Length);
  std::string second = chat.turn_text("More");
  EXPECT_EQ(second, "<turn|>\n<|turn>user\nMore<turn|>\n<|turn>model\n<|channel>thought\n<channel|>");
  auto r2 = chat.send("More");
  auto t2 = tok.encode(second);
  expected.insert(expected.end(), t2.begin(), t2.end());
  expected.insert(expected.end(), r2.tokens.begin(), r2.tokens.end());
  EXPECT_EQ(chat.history(), expected);

  chat.reset();
  EXPECT_TRUE(chat.history().empty());
  EXPECT_EQ(chat.turn_text("Hi"), first);
}

TEST_F(ChatSessionTest, ThinkingKeepsLaterTurnsOpen) {
  ChatSession chat(*engine_, greedy(2, /*think=*/true));
  EXPECT_EQ(chat.turn_text("Q"), "<bos><|turn>system\n<|think|>\n<turn|>\n<|turn>user\nQ<turn|>\n<|turn>model\n");
  chat.send("Q");
  EXPECT_EQ(chat.turn_text("R"), "<turn|>\n<|turn>user\nR<turn|>\n<|turn>model\n");
}

// Generating 12 tokens in one call equals 6 + 6 across two calls that share the cache: the last token of
// the first call is pending (not yet in the cache) and is fed first by the second call.
TEST_F(ChatSessionTest, ContinuationEqualsOneLongGeneration) {
  Generator gen(*engine_->decoder, &*engine_->tokenizer);
  GenerationRequest req;
  req.prompt = engine_->tokenizer->encode("<bos><|turn>user\nCount<turn|>\n<|turn>model\n");
  req.sampling.temperature = 0;
  req.max_new_tokens = 12;
  KvCache c1(engine_->model->config.text), c2(engine_->model->config.text);
  std::vector<int32_t> h1, h2;
  auto whole = gen.generate(req, c1, h1);
  ASSERT_EQ(whole.tokens.size(), 12u);
  req.max_new_tokens = 6;
  auto first = gen.generate(req, c2, h2);
  req.prompt.clear();
  auto second = gen.generate(req, c2, h2);
  std::vector<int32_t> joined = first.tokens;
  joined.insert(joined.end(), second.tokens.begin(), second.tokens.end());
  EXPECT_EQ(joined, whole.tokens);
  EXPECT_EQ(h1, h2);
  EXPECT_EQ(first.text + second.text, whole.text);
}

}  // namespace
}  // namespace ug
