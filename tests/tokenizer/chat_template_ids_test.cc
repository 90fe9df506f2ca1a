// Rendered prompts encoded with the real Gemma 4 tokenizer reproduce the golden ids of
// docs/tokenizer_chat.md §1.4 and the 188-token conversation of §2.6.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "test_util.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace ug {
namespace {

using nlohmann::json;

const Tokenizer& tokenizer() {
  static const Tokenizer tok = Tokenizer::from_file(test::asset_path("tokenizer/tokenizer.json"));
  return tok;
}

class ChatTemplateIds : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = test::asset_path("tokenizer/tokenizer.json");
    ASSERT_TRUE(std::filesystem::exists(path))
        << path << " is missing: run scripts/fetch_tokenizer.sh first";
  }
};

std::vector<int32_t> ids_of(const json& list) { return list.get<std::vector<int32_t>>(); }

TEST_F(ChatTemplateIds, GoldensOfSection1_4) {
  const json goldens = json::parse(read_text_file(test::data_path("chat/goldens.json")))["goldens"];
  ASSERT_EQ(goldens.size(), 8u);
  for (const json& g : goldens) {
    SCOPED_TRACE(g["name"].get<std::string>());
    ChatTemplateOptions o;
    o.add_generation_prompt = g.value("add_generation_prompt", true);
    o.enable_thinking = g.value("enable_thinking", false);
    std::string prompt = render_chat(g["messages"], o);
    if (g.value("e_series", false)) {  // E-series golden: our 12B tail is not part of it
      const std::string tail = "<|channel>thought\n<channel|>";
      ASSERT_EQ(prompt.substr(prompt.size() - tail.size()), tail);
      prompt.resize(prompt.size() - tail.size());
    }
    EXPECT_EQ(tokenizer().encode(prompt), ids_of(g["ids"]));
  }
}

TEST_F(ChatTemplateIds, Section2_6ConversationIs188Tokens) {
  const json conv = json::parse(read_text_file(test::data_path("chat/weather_conversation.json")));
  ChatTemplateOptions o;
  o.tools = conv["tools"];
  const std::vector<int32_t> ids = tokenizer().encode(render_chat(conv["messages"], o));
  EXPECT_EQ(ids.size(), 188u);
  const std::vector<int32_t> head = {2,   105,   9731,  107,    3048, 659,
                                     496, 11045, 16326, 236761, 46,   163688};
  ASSERT_GE(ids.size(), head.size());
  EXPECT_EQ(std::vector<int32_t>(ids.begin(), ids.begin() + head.size()), head);
  const std::vector<int32_t> user_turn = {105, 2364, 107, 258880, 3689};
  EXPECT_NE(std::search(ids.begin(), ids.end(), user_turn.begin(), user_turn.end()), ids.end());
  const std::vector<int32_t> tail = {105, 4368, 107, 100, 45518, 107, 101};
  EXPECT_EQ(std::vector<int32_t>(ids.end() - tail.size(), ids.end()), tail);
}

}  // namespace
}  // namespace ug
