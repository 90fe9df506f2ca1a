// ug::Tokenizer on small hand-written tokenizer.json files (no npm needed): the BPE algorithm's
// rank/position order, byte fallback, unk fusing, added-token matching, pre-tokenizer behaviours,
// decoders, and located errors for malformed or unsupported files.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "test_util.h"
#include "tokenizer/bpe_pipeline.h"
#include "tokenizer/detokenizer.h"
#include "tokenizer/tokenizer.h"

namespace ug {
namespace {

using json = nlohmann::json;
using Ids = std::vector<int32_t>;

const std::string kSpace = "\xE2\x96\x81";  // ▁

json added(int id, const std::string& content, bool special, bool normalized = false) {
  return {{"id", id},        {"content", content},       {"single_word", false}, {"lstrip", false},
          {"rstrip", false}, {"normalized", normalized}, {"special", special}};
}

// A tiny Gemma-shaped tokenizer:
//   0 <unk>  1 <bos>  2 <eos>  3 <|turn>  4 <t>  5 <t>>  6..261 <0x00>..<0xFF>
//   262 a  263 b  264 c  265 ▁  266 bc  267 ab  268 aa  269 aaaa  270 ▁a  271 é  272 d▁d  273 d
json base_json() {
  json vocab = json::object();
  const char* specials[] = {"<unk>", "<bos>", "<eos>", "<|turn>", "<t>", "<t>>"};
  int id = 0;
  for (const char* s : specials) vocab[s] = id++;
  for (int b = 0; b < 256; ++b) vocab[fmt::format("<0x{:02X}>", b)] = id++;
  for (std::string s :
       {std::string("a"), std::string("b"), std::string("c"), kSpace, std::string("bc"),
        std::string("ab"), std::string("aa"), std::string("aaaa"), kSpace + "a", std::string("é"),
        "d" + kSpace + "d", std::string("d")})
    vocab[s] = id++;
  json merges = json::array({json::array({"b", "c"}), "a b", json::array({"a", "a"}),
                             json::array({"aa", "aa"}), json::array({kSpace, "a"})});
  return {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens",
       json::array({added(0, "<unk>", true), added(1, "<bos>", true), added(2, "<eos>", true),
                    added(3, "<|turn>", true), added(4, "<t>", false), added(5, "<t>>", false)})},
      {"normalizer", {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpace}}},
      {"pre_tokenizer",
       {{"type", "Split"},
        {"pattern", {{"String", " "}}},
        {"behavior", "MergedWithPrevious"},
        {"invert", false}}},
      {"post_processor", nullptr},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders",
         json::array({{{"type", "Replace"}, {"pattern", {{"String", kSpace}}}, {"content", " "}},
                      {{"type", "ByteFallback"}},
                      {{"type", "Fuse"}}})}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", "<unk>"},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", true},
        {"byte_fallback", true},
        {"ignore_merges", false},
        {"vocab", vocab},
        {"merges", merges}}},
  };
}

Tokenizer load(const json& j) { return Tokenizer::from_json_text(j.dump(), "synthetic.json"); }

int32_t byte_id(int b) { return 6 + b; }

TEST(SyntheticTokenizer, MergesByRankThenLeftmostPosition) {
  Tokenizer tok = load(base_json());
  EXPECT_EQ(tok.vocab_size(), 274);
  // (b,c) has rank 0 and wins over (a,b) rank 1; there is no (a,bc) merge.
  EXPECT_EQ(tok.encode("abc"), (Ids{262, 266}));
  EXPECT_EQ(tok.encode("ab"), (Ids{267}));
  // Equal ranks: leftmost first.
  EXPECT_EQ(tok.encode("aaa"), (Ids{268, 262}));
  EXPECT_EQ(tok.encode("aaaa"), (Ids{269}));
  EXPECT_EQ(tok.encode("aaaaa"), (Ids{269, 262}));
  // Spaces are normalized to ▁ and merge across "word" boundaries (the Split is a no-op).
  EXPECT_EQ(tok.encode("b a"), (Ids{263, 270}));
  EXPECT_EQ(tok.encode(""), Ids{});
}

TEST(SyntheticTokenizer, ByteFallbackAndUnk) {
  Tokenizer tok = load(base_json());
  EXPECT_EQ(tok.encode("z"), (Ids{byte_id(0x7A)}));
  EXPECT_EQ(tok.encode("a€"), (Ids{262, byte_id(0xE2), byte_id(0x82), byte_id(0xAC)}));
  EXPECT_EQ(tok.encode("é"), (Ids{271}));
  EXPECT_EQ(tok.decode(tok.encode("a€z é")), "a€z é");

  json j = base_json();
  j["model"]["byte_fallback"] = false;
  EXPECT_EQ(load(j).encode("zz a€"), (Ids{0, 270, 0}));  // fused unk runs
  j["model"]["fuse_unk"] = false;
  EXPECT_EQ(load(j).encode("zz a€"), (Ids{0, 0, 270, 0}));
  j["model"]["unk_token"] = nullptr;
  EXPECT_EQ(load(j).encode("zz a€"), (Ids{270}));  // HF drops unknown scalars
}

TEST(SyntheticTokenizer, AddedTokensLeftmostLongestOnRawText) {
  Tokenizer tok = load(base_json());
  EXPECT_EQ(tok.encode("<t>>"), (Ids{5}));
  EXPECT_EQ(tok.encode("<t>"), (Ids{4}));
  EXPECT_EQ(tok.encode("a<t>b<|turn>c"), (Ids{262, 4, 263, 3, 264}));
  EXPECT_EQ(tok.encode("<bos><bos>"), (Ids{1, 1}));
  EXPECT_EQ(tok.encode("a <eos>"), (Ids{262, 265, 2}));  // the space stays a lone ▁
  EXPECT_EQ(tok.encode("<|tur"),
            (Ids{byte_id('<'), byte_id('|'), byte_id('t'), byte_id('u'), byte_id('r')}));
  EXPECT_TRUE(tok.is_special(3));
  EXPECT_FALSE(tok.is_special(4));
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.pad_id(), -1);
  EXPECT_FALSE(tok.add_bos());
}

TEST(SyntheticTokenizer, NormalizedAddedTokensMatchAfterNormalization) {
  json j = base_json();
  j["added_tokens"].push_back(added(274, "d d", false, true));  // matched as "d▁d"
  Tokenizer tok = load(j);
  EXPECT_EQ(tok.encode("ad db"), (Ids{262, 274, 263}));
  EXPECT_EQ(tok.encode("d▁d"), (Ids{274}));
}

TEST(SyntheticTokenizer, MergesInStringAndArrayFormatsAgree) {
  json j = base_json();
  json strings = json::array();
  for (const json& m : j["model"]["merges"])
    strings.push_back(
        m.is_string() ? m : json(m[0].get<std::string>() + " " + m[1].get<std::string>()));
  json k = j;
  k["model"]["merges"] = strings;
  for (const char* text : {"abc", "aaaaa", "b a c", "ab ab"})
    EXPECT_EQ(load(j).encode(text), load(k).encode(text)) << text;
}

TEST(SyntheticTokenizer, DecodeAndStreaming) {
  Tokenizer tok = load(base_json());
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(tok.decode(Ids{262, 265, 263}), "a b");
  EXPECT_EQ(tok.decode(Ids{byte_id(0xE2), byte_id(0x82)}), fffd + fffd);
  EXPECT_EQ(tok.decode(Ids{1, 262, 3}, true), "a");
  IncrementalDetokenizer detok(tok);
  EXPECT_EQ(detok.push(byte_id(0xE2)), "");
  EXPECT_EQ(detok.push(byte_id(0x82)), "");
  EXPECT_EQ(detok.push(byte_id(0xAC)), "");
  EXPECT_EQ(detok.push(262), "€a");
  EXPECT_EQ(detok.flush(), "");

  json j = base_json();
  j["decoder"] = nullptr;  // HF joins the raw pieces with spaces
  EXPECT_EQ(load(j).decode(Ids{262, 265, 263}), "a " + kSpace + " b");
  IncrementalDetokenizer plain(load(j));
  std::string streamed = plain.push(262);
  streamed += plain.push(263);
  streamed += plain.flush();
  EXPECT_EQ(streamed, "a b");
}

TEST(SyntheticTokenizer, IgnoreMergesUsesWholeWord) {
  json j = base_json();
  j["model"]["ignore_merges"] = true;
  j["model"]["merges"] = json::array();
  EXPECT_EQ(load(j).encode("aaaa"), (Ids{269}));
  EXPECT_EQ(load(j).encode("aaa"), (Ids{262, 262, 262}));
}

TEST(SyntheticTokenizer, AddBosFromTokenizerConfig) {
  test::TempDir dir;
  test::write_file(dir.file("tokenizer.json"), base_json().dump());
  EXPECT_FALSE(Tokenizer::from_file(dir.file("tokenizer.json")).add_bos());
  test::write_file(dir.file("tokenizer_config.json"), R"({"add_bos_token": true})");
  EXPECT_TRUE(Tokenizer::from_file(dir.file("tokenizer.json")).add_bos());
  test::write_file(dir.file("tokenizer_config.json"), R"({"add_bos_token": "yes"})");
  EXPECT_THROW(Tokenizer::from_file(dir.file("tokenizer.json")), Error);
  test::write_file(dir.file("tokenizer_config.json"), R"({"add_bos_token": tru)");
  EXPECT_THROW(Tokenizer::from_file(dir.file("tokenizer.json")), Error);
}

TEST(PreTokenizerSplit, BehavioursMatchHF) {
  auto run = [](const char* behavior) {
    json j = {{"type", "Split"},
              {"pattern", {{"String", "-"}}},
              {"behavior", behavior},
              {"invert", false}};
    std::vector<std::string_view> words;
    bpe::PreTokenizer::from_json(j, "pre").split("a--b-", words);
    return std::vector<std::string>(words.begin(), words.end());
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(run("Removed"), (V{"a", "b"}));
  EXPECT_EQ(run("Isolated"), (V{"a", "-", "-", "b", "-"}));
  EXPECT_EQ(run("MergedWithPrevious"), (V{"a-", "-", "b-"}));
  EXPECT_EQ(run("MergedWithNext"), (V{"a", "-", "-b", "-"}));
  EXPECT_EQ(run("Contiguous"), (V{"a", "--", "b", "-"}));
}

// Loading `j` must fail with a message containing every string in `parts`.
void expect_load_error(const std::string& text, std::vector<std::string> parts) {
  try {
    Tokenizer::from_json_text(text, "bad.json");
    ADD_FAILURE() << "expected ug::Error for " << text.substr(0, 200);
  } catch (const Error& e) {
    for (const std::string& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos)
          << "message: " << e.what() << "\nmissing: " << p;
  }
}

TEST(TokenizerErrors, MalformedJsonIsLocated) {
  expect_load_error("{\n  \"model\": {\n    \"vocab\": {\"a\": 0,}\n  }\n}",
                    {"bad.json:3:", "invalid JSON"});
  expect_load_error("", {"bad.json", "invalid JSON"});
  expect_load_error("[1, 2]", {"bad.json", "top level must be a JSON object"});
  expect_load_error("{\"model\": ", {"bad.json:1:", "invalid JSON"});
}

TEST(TokenizerErrors, MissingOrUnsupportedParts) {
  json j = base_json();
  j.erase("model");
  expect_load_error(j.dump(), {"bad.json", "missing field \"model\""});
  j = base_json();
  j["model"].erase("vocab");
  expect_load_error(j.dump(), {"missing field \"model.vocab\""});
  j = base_json();
  j["model"].erase("merges");
  expect_load_error(j.dump(), {"missing field \"model.merges\""});
  j = base_json();
  j["model"]["type"] = "Unigram";
  expect_load_error(j.dump(), {"model.type \"Unigram\" is not supported"});
  j = base_json();
  j["normalizer"] = {{"type", "NFKC"}};
  expect_load_error(j.dump(), {"bad.json: normalizer", "\"NFKC\" is not supported"});
  j = base_json();
  j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", kSpace}};
  expect_load_error(j.dump(), {"pre_tokenizer", "\"Metaspace\" is not supported"});
  j = base_json();
  j["decoder"]["decoders"].push_back(
      {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
  expect_load_error(j.dump(), {"decoder.decoders[3]"});
  j = base_json();
  j["decoder"]["decoders"][0]["pattern"] = {{"Regex", "x+"}};
  expect_load_error(j.dump(), {"decoder.decoders[0].pattern", "String"});
  j = base_json();
  j["model"]["dropout"] = 0.1;
  expect_load_error(j.dump(), {"model.dropout"});
  j = base_json();
  j["added_tokens"][4]["lstrip"] = true;
  expect_load_error(j.dump(), {"added_tokens[4].lstrip"});
}

TEST(TokenizerErrors, InconsistentVocabAndMerges) {
  json j = base_json();
  j["model"]["merges"].push_back(json::array({"a", "q"}));
  expect_load_error(j.dump(), {"model.merges[5]", "\"q\" is not in model.vocab"});
  j = base_json();
  j["model"]["merges"].push_back("c c");
  expect_load_error(j.dump(), {"model.merges[5]", "merge result \"cc\" is not in model.vocab"});
  j = base_json();
  j["model"]["merges"].push_back("abc");
  expect_load_error(j.dump(), {"model.merges[5]", "not of the form"});
  j = base_json();
  j["model"]["merges"].push_back(json::array({"a", "b", "c"}));
  expect_load_error(j.dump(), {"model.merges[5]"});
  j = base_json();
  j["model"]["merges"].push_back(42);
  expect_load_error(j.dump(), {"model.merges[5]"});
  j = base_json();
  j["model"]["vocab"]["zz"] = "7";
  expect_load_error(j.dump(), {"model.vocab[\"zz\"]", "expected an integer id"});
  j = base_json();
  j["model"]["vocab"]["zz"] = 7;  // id 7 is <0x01>
  expect_load_error(j.dump(), {"model.vocab", "id 7 is used by both"});
  j = base_json();
  j["model"]["vocab"]["zz"] = 5000;
  expect_load_error(j.dump(), {"model.vocab", "without holes"});
  j = base_json();
  j["model"]["vocab"]["zz"] = -1;
  expect_load_error(j.dump(), {"model.vocab[\"zz\"]", "out of range"});
  j = base_json();
  j["added_tokens"][3]["id"] = 262;  // "<|turn>" is id 3 in the vocab
  expect_load_error(j.dump(), {"added_tokens[3]", "has id 3 in model.vocab but id 262"});
  j = base_json();
  j["added_tokens"].push_back(added(262, "<new>", true));  // id 262 is "a"
  expect_load_error(j.dump(), {"added_tokens[6]", "id 262 is \"a\""});
  j = base_json();
  j["model"]["unk_token"] = "<nope>";
  expect_load_error(j.dump(), {"model.unk_token"});
}

TEST(TokenizerErrors, AddedTokenOutsideVocabExtendsIt) {
  json j = base_json();
  j["added_tokens"].push_back(added(274, "<new>", true));
  Tokenizer tok = load(j);
  EXPECT_EQ(tok.vocab_size(), 275);
  EXPECT_EQ(tok.encode("a<new>"), (Ids{262, 274}));
  EXPECT_EQ(tok.id_to_piece(274), "<new>");
  EXPECT_TRUE(tok.is_special(274));
}

TEST(TokenizerErrors, RuntimeErrors) {
  Tokenizer tok = load(base_json());
  try {
    tok.decode(Ids{1, 300000});
    ADD_FAILURE() << "expected ug::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("synthetic.json: token id 300000 out of range [0, 274)"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(tok.id_to_piece(274), Error);
  try {
    tok.encode("ab\xFF");
    ADD_FAILURE() << "expected ug::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("byte offset 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Tokenizer::from_file("/nonexistent/tokenizer.json"), Error);
}

}  // namespace
}  // namespace ug
