// Token masks: the trie walk equals the oracle (every token checked on its own with the matcher) on
// a synthetic vocabulary along random constrained generations, and on the real 262k Gemma 4
// vocabulary, whose token bytes must be what the detokenizer produces. Prints the per-step mask
// cost.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <limits>

#include "json_test_util.h"
#include "runtime/json_constraint/json_constraint.h"
#include "runtime/json_constraint/token_mask.h"
#include "test_util.h"
#include "tokenizer/detokenizer.h"
#include "tokenizer/tokenizer.h"

namespace ug {
namespace {

using nlohmann::json;

// Every single byte, structural pieces, partial UTF-8, escapes, whitespace runs and some words.
std::vector<std::string> synthetic_vocab() {
  std::vector<std::string> v = {""};  // id 0: left out (like a special token)
  for (int b = 0; b < 256; ++b) v.push_back(std::string(1, char(b)));
  for (const char* s : {"{\"",      "\":",        "\",",     "\"}",         "\": \"",
                        "true",     "false",      "null",    "nul",         "123",
                        "1.5e",     "-0",         "e+",      "\\\"",        "\\u00",
                        "d83d",     "\\ude00",    "\\ud83d", "\xC3\xA9",    "\xF0\x9F\x98\x80",
                        "\xF0\x9F", "\x98\x80",   "  ",      "\n  ",        "\n\n",
                        "    ",     "\"a",        "\"ab",    "abc",         "}}",
                        "]}",       "],",         "[{",      "{}",          "[]",
                        "name",     "\"name\":",  "age",     "\"tags\":[",  "\"a\",\"b\"",
                        "\"k\":1}", " }",         ",\"",     "0,",          "\"ok\":",
                        "\"v\":",   "\"kids\":[", "\\n",     "\\",          "\"\"",
                        "}",        "]",          "{",       "\"b\"",       "7}",
                        "\"red\"",  "\"re",       "d\"",     "\xE2\x96\x81"})
    v.push_back(s);
  v.push_back("<turn|>");  // stands for a stop id: it is excluded below
  return v;
}

TEST(JsonMask, TrieWalkEqualsOracleOnRandomGenerations) {
  std::vector<std::string> vocab = synthetic_vocab();
  const int32_t stop = int32_t(vocab.size() - 1);
  vocab[size_t(stop)] = "";
  auto trie = TokenTrie::from_strings(vocab);
  const std::vector<std::string> schemas = {
      R"({"type":"object"})",
      R"({"type":"object","properties":{"name":{"type":"string","maxLength":5},
          "age":{"type":"integer"},"tags":{"type":"array","items":{"enum":["a","b"]},
          "minItems":1,"maxItems":3},"ok":{"type":["boolean","null"]}},
          "required":["name","tags"]})",
      R"({"type":"object","properties":{"v":{"type":"integer"},
          "kids":{"type":"array","items":{"$ref":"#"},"maxItems":2}},"required":["v"]})",
      R"({"anyOf":[{"type":"object","properties":{"k":{"const":1}},"required":["k"]},
          {"type":"object","properties":{"a":{"type":"string","minLength":2}},"required":["a"]}]})",
  };
  std::mt19937 rng(11);
  int steps = 0, completed = 0;
  for (const std::string& text : schemas) {
    const json doc = json::parse(text);
    auto g = JsonGrammar::from_schema(doc, "schema");
    auto provider = std::make_shared<JsonMaskProvider>(g, trie);
    TokenMasker masker(g, trie);
    for (int run = 0; run < 12; ++run) {
      JsonConstraint c(provider, {.stop_ids = {stop}});
      JsonMatcher m(*g);
      JsonStackSet state = m.initial();
      std::string out;
      for (int t = 0; t < 160; ++t, ++steps) {
        TokenMask fast, slow;
        masker.compute(state, fast);
        masker.compute_slow(state, slow);
        ASSERT_EQ(fast, slow) << "after " << json(out).dump();
        std::vector<float> logits(vocab.size(), 0.0f);
        c.mask_logits(logits);
        std::vector<int32_t> allowed;
        for (int32_t id = 0; id < int32_t(vocab.size()); ++id) {
          const bool in_mask = id != stop && mask_test(fast, id);
          const bool ok = logits[size_t(id)] == 0.0f;
          ASSERT_EQ(ok, in_mask || (id == stop && m.accepts(state))) << id;
          if (ok) allowed.push_back(id);
        }
        ASSERT_FALSE(allowed.empty()) << "dead end after " << json(out).dump();
        int32_t id = allowed[rng() % allowed.size()];
        if (t > 30 && rng() % 4 != 0) {  // steer towards closing: quotes, brackets, short values
          std::vector<int32_t> closing;
          for (int32_t a : allowed)
            if (a != stop && vocab[size_t(a)].find_first_of("\"}]0") != std::string::npos)
              closing.push_back(a);
          if (!closing.empty()) id = closing[rng() % closing.size()];
        }
        if (m.accepts(state) && t > 20) id = stop;
        c.accept(id);
        if (id == stop) break;
        out += vocab[size_t(id)];
        state = m.advance(state, vocab[size_t(id)]);
      }
      if (c.complete()) {
        ++completed;
        EXPECT_TRUE(test::parses_and_validates(out, doc));
      }
    }
    EXPECT_GT(provider->stats().cached, 0);
  }
  EXPECT_GT(completed, 4);
  std::printf("synthetic vocabulary: %d steps compared with the oracle, %d completed values\n",
              steps, completed);
}

TEST(JsonMask, ConstraintPhasesThoughtToolCallAndStops) {
  std::vector<std::string> vocab = {"", "", "", "", "{", "}", "x", " "};
  // ids 0 stop, 1 thought open, 2 thought close, 3 tool call open (specials: no bytes)
  auto trie = TokenTrie::from_strings(vocab);
  auto provider = std::make_shared<JsonMaskProvider>(JsonGrammar::any_object(), trie);
  const JsonConstraintOptions opt{
      .stop_ids = {0}, .thought_open = 1, .thought_close = 2, .tool_call_open = 3};
  auto allowed = [&](JsonConstraint& c) {
    std::vector<float> l(vocab.size(), 0.0f);
    c.mask_logits(l);
    std::string s;
    for (size_t i = 0; i < l.size(); ++i) s += l[i] == 0.0f ? '1' : '.';
    return s;
  };
  JsonConstraint c(provider, opt);
  EXPECT_EQ(allowed(c), ".1.11..1");  // thought, tool call, "{", " "
  c.accept(1);
  EXPECT_EQ(allowed(c), ".1111111");  // free text, no stop
  EXPECT_THROW(c.accept(0), Error);
  c.accept(6);
  c.accept(2);
  EXPECT_EQ(allowed(c), "...11..1");  // thought done: tool call or JSON
  c.accept(4);
  EXPECT_EQ(allowed(c), ".....1.1");
  EXPECT_THROW(c.accept(0), Error);
  c.accept(5);
  EXPECT_TRUE(c.complete());
  EXPECT_EQ(allowed(c), "1......1");  // stop or trailing whitespace
  c.accept(0);
  JsonConstraint tool(provider, opt);
  tool.accept(3);
  EXPECT_EQ(allowed(tool), "11111111");  // a tool call is not constrained
  JsonConstraint plain(provider, {.stop_ids = {0}});
  EXPECT_EQ(allowed(plain), "....1..1");
  EXPECT_THROW(plain.accept(6), Error);
}

class RealVocabulary : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string path = test::asset_path("tokenizer/tokenizer.json");
    if (!std::filesystem::exists(path)) return;
    tok_ = new Tokenizer(Tokenizer::from_file(path));
    const auto t0 = std::chrono::steady_clock::now();
    trie_ = new std::shared_ptr<const TokenTrie>(TokenTrie::build(*tok_));
    build_ms_ =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
  static void TearDownTestSuite() {
    delete tok_;
    delete trie_;
  }
  void SetUp() override { ASSERT_NE(tok_, nullptr) << "run scripts/fetch_tokenizer.sh"; }
  static inline Tokenizer* tok_ = nullptr;
  static inline std::shared_ptr<const TokenTrie>* trie_ = nullptr;
  static inline double build_ms_ = 0;
};

TEST_F(RealVocabulary, TokenBytesAreWhatTheDetokenizerProduces) {
  const TokenTrie& t = **trie_;
  EXPECT_EQ(t.vocab_size(), 262144);
  EXPECT_EQ(t.bytes(*tok_->token_to_id("<0x41>")), "A");
  EXPECT_EQ(t.bytes(*tok_->token_to_id("<0xE2>")), "\xE2");
  EXPECT_EQ(t.bytes(*tok_->token_to_id("▁▁")), "  ");
  for (const char* special : {"<turn|>", "<eos>", "<|channel>", "<|tool_call>", "<|\"|>"})
    EXPECT_EQ(t.bytes(*tok_->token_to_id(special)), "") << special;
  for (const std::string text :
       {R"({"name": "Zoë", "emoji": "😀", "n": [1, 2.5e-3], "k": {"\"q\"": null}})",
        "{\n  \"a\": \"日本語のテキスト\",\n  \"b\": \"\\u00e9\"\n}", "{\"\t\": \"  spaced  \"}"}) {
    std::string joined;
    IncrementalDetokenizer detok(*tok_);
    std::string streamed;
    for (int32_t id : tok_->encode(text)) {
      joined += t.bytes(id);
      streamed += detok.push(id);
    }
    streamed += detok.flush();
    EXPECT_EQ(joined, text);
    EXPECT_EQ(streamed, text);
  }
  // Byte-fallback runs that make whole characters decode to those characters.
  std::vector<int32_t> ids;
  for (const char* b : {"<0xF0>", "<0x9F>", "<0x98>", "<0x80>"})
    ids.push_back(*tok_->token_to_id(b));
  std::string joined;
  for (int32_t id : ids) joined += t.bytes(id);
  EXPECT_EQ(tok_->decode(ids), joined);
}

TEST_F(RealVocabulary, MaskEqualsOracleAndCost) {
  const TokenTrie& t = **trie_;
  auto object = JsonGrammar::any_object();
  auto person = test::schema(R"({"type":"object","properties":{"name":{"type":"string"},
        "age":{"type":"integer"},"city":{"enum":["Paris","Tokyo"]}},"required":["name","age"]})");
  auto short_string = test::schema(R"({"type":"object","properties":{"s":{"type":"string","maxLength":6}}})");
  struct Case {
    std::shared_ptr<const JsonGrammar> g;
    std::string prefix;
    bool oracle;
  };
  const std::vector<Case> cases = {
      {object, "", true},
      {object, "{\"", false},
      {object, "{\"a\": \"hel", true},
      {object, "{\"a\": ", false},
      {object, "{\"a\": 12", true},
      {person, "{\"", true},
      {person, "{\"name\": \"Bo\", ", false},
      {person, "{\"name\": \"Bo\", \"age\": 3", false},
      {short_string, "{\"s\": \"\xC3\xA9t\xC3\xA9 ", true},
      {short_string, "{\"s\": \"\\", true},
  };
  std::printf("trie: %zu nodes for %d tokens, built in %.0f ms\n", t.nodes(), t.vocab_size(),
              build_ms_);
  double total_ms = 0, worst_ms = 0;
  for (const Case& c : cases) {
    TokenMasker masker(c.g, *trie_);
    JsonStackSet state = masker.matcher().advance(masker.matcher().initial(), c.prefix);
    ASSERT_FALSE(state.empty()) << c.prefix;
    TokenMask fast;
    masker.compute(state, fast);  // warm-up (scratch allocation)
    const int reps = 5;
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) masker.compute(state, fast);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
        reps;
    int64_t allowed = 0;
    for (uint64_t w : fast) allowed += __builtin_popcountll(w);
    std::printf("mask after %-36s %8.2f ms  (%lld tokens allowed)\n", json(c.prefix).dump().c_str(),
                ms, (long long)allowed);
    total_ms += ms;
    worst_ms = std::max(worst_ms, ms);
    if (c.oracle) {
      TokenMask slow;
      masker.compute_slow(state, slow);
      EXPECT_EQ(fast, slow) << c.prefix;
    }
  }
  std::printf(
      "uncached mask: mean %.2f ms, worst %.2f ms per step; a cached state costs a lookup\n",
      total_ms / double(cases.size()), worst_ms);
  // The whole per-step cost as the scheduler pays it (a cached mask applied to 262k logits).
  auto provider = std::make_shared<JsonMaskProvider>(object, *trie_);
  JsonConstraint c(provider, {.stop_ids = {1, 106}});
  for (int32_t id : tok_->encode("{\"a\": \"x")) c.accept(id);
  std::vector<float> logits(262144, 0.0f);
  c.mask_logits(logits);
  const auto t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < 20; ++r) c.mask_logits(logits);
  std::printf(
      "mask_logits with a cached mask: %.3f ms per step\n",
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
          20);
}

}  // namespace
}  // namespace ug
