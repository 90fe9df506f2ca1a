// libFuzzer target for ug::Tokenizer: a small synthetic BPE tokenizer (byte fallback, merges, added
// tokens, Gemma's normalizer and decoder) is built once; each input is encoded and decoded. Valid
// UTF-8 must round-trip exactly (no literal U+2581 in the input, which decodes to a space) and
// stream identically through IncrementalDetokenizer; invalid UTF-8 must raise ug::Error, never
// crash.
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/error.h"
#include "tokenizer/bpe_utf8.h"
#include "tokenizer/detokenizer.h"
#include "tokenizer/tokenizer.h"

namespace {

using json = nlohmann::json;

const char kSpace[] = "\xE2\x96\x81";

std::string synthetic_tokenizer_json() {
  json vocab = json::object();
  int id = 0;
  for (const char* s : {"<pad>", "<eos>", "<bos>", "<unk>", "<|turn>", "<turn|>", "<t>", "<t>>"})
    vocab[s] = id++;
  for (int b = 0; b < 256; ++b) vocab[fmt::format("<0x{:02X}>", b)] = id++;
  const std::string pieces[] = {"a",
                                "b",
                                "c",
                                "e",
                                "t",
                                "h",
                                kSpace,
                                "\n",
                                "é",
                                "日",
                                "ab",
                                "bc",
                                "abc",
                                "th",
                                "the",
                                std::string(kSpace) + "the",
                                std::string(kSpace) + kSpace,
                                "\n\n",
                                "ee"};
  for (const std::string& p : pieces) vocab[p] = id++;
  json merges =
      json::array({json::array({"b", "c"}), json::array({"a", "b"}), "ab c", "t h", "th e",
                   json::array({kSpace, "the"}), json::array({kSpace, kSpace}), "\n \n", "e e"});
  json added = json::array();
  int i = 0;
  for (const char* s : {"<pad>", "<eos>", "<bos>", "<unk>", "<|turn>", "<turn|>", "<t>", "<t>>"}) {
    added.push_back({{"id", i},
                     {"content", s},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", i < 6}});
    ++i;
  }
  json j = {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer", {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpace}}},
      {"pre_tokenizer",
       {{"type", "Split"},
        {"pattern", {{"String", " "}}},
        {"behavior", "MergedWithPrevious"},
        {"invert", false}}},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders",
         json::array({{{"type", "Replace"}, {"pattern", {{"String", kSpace}}}, {"content", " "}},
                      {{"type", "ByteFallback"}},
                      {{"type", "Fuse"}}})}}},
      {"model",
       {{"type", "BPE"},
        {"unk_token", "<unk>"},
        {"fuse_unk", true},
        {"byte_fallback", true},
        {"vocab", vocab},
        {"merges", merges}}},
  };
  return j.dump();
}

const ug::Tokenizer& tokenizer() {
  static const ug::Tokenizer tok =
      ug::Tokenizer::from_json_text(synthetic_tokenizer_json(), "fuzz_tokenizer.json");
  return tok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ug::Tokenizer& tok = tokenizer();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (!ug::bpe::is_valid_utf8(text)) {
    try {
      tok.encode(text);
    } catch (const ug::Error&) {
      return 0;
    }
    std::abort();  // invalid UTF-8 must be rejected
  }
  std::vector<int32_t> ids = tok.encode(text);
  std::string decoded = tok.decode(ids);
  if (text.find(kSpace) == std::string_view::npos && decoded != text) std::abort();
  ug::IncrementalDetokenizer detok(tok);
  std::string streamed;
  for (int32_t id : ids) streamed += detok.push(id);
  streamed += detok.flush();
  if (streamed != decoded) std::abort();
  // Arbitrary id sequences (from the input bytes) must decode identically in both ways.
  std::vector<int32_t> raw_ids;
  for (size_t i = 0; i < size; ++i) raw_ids.push_back(int32_t(data[i]) + (i % 2 ? 8 : 0));
  ug::IncrementalDetokenizer detok2(tok, size % 2 == 1);
  std::string streamed2;
  for (int32_t id : raw_ids) streamed2 += detok2.push(id);
  streamed2 += detok2.flush();
  if (streamed2 != tok.decode(raw_ids, size % 2 == 1)) std::abort();
  return 0;
}
