// The normalizer, pre-tokenizer and decoder stages of an HF tokenizer.json, for the component types
// this engine supports. Anything else is rejected at load time with the offending path and type.
//
// Supported: normalizer Replace(String) / Prepend / Sequence / null; pre_tokenizer
// Split(String, invert=false) / Sequence / null; decoder Replace(String) / ByteFallback / Fuse
// (last) / Sequence / null (null joins tokens with spaces, as HF does).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace ug::bpe {

struct ReplaceRule {
  std::string pattern;  // literal, non-empty
  std::string content;
};

// Replaces every non-overlapping occurrence of rule.pattern, scanning left to right.
void replace_all(std::string_view in, const ReplaceRule& rule, std::string& out);
// `text` after replace_all of every rule, in order.
std::string replace_each(std::string_view text, const std::vector<ReplaceRule>& rules);

class Normalizer {
 public:
  static Normalizer from_json(const nlohmann::json& j, std::string_view path);
  bool is_identity() const { return steps_.empty(); }
  std::string apply(std::string_view text) const;

 private:
  struct Step {
    bool prepend = false;  // Prepend(content) when true, else Replace(rule)
    ReplaceRule rule;
  };
  void add(const nlohmann::json& j, const std::string& path);
  std::vector<Step> steps_;
};

class PreTokenizer {
 public:
  enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
  static PreTokenizer from_json(const nlohmann::json& j, std::string_view path);
  // Appends the words of `text` (views into it); empty words are dropped.
  void split(std::string_view text, std::vector<std::string_view>& words) const;

 private:
  struct Step {
    std::string pattern;
    Behavior behavior;
  };
  void add(const nlohmann::json& j, const std::string& path);
  static void split_one(std::string_view text, const Step& step,
                        std::vector<std::string_view>& out);
  std::vector<Step> steps_;
};

// Token-by-token form of HF's decode_chain(...).join(""): every supported chain is local except for
// ByteFallback, which needs the whole run of consecutive byte tokens (HF replaces an invalid run by
// one U+FFFD per byte). So the state only holds the pending byte run.
class Decoder {
 public:
  struct State {
    std::string bytes;  // pending byte-fallback run
    bool first = true;  // no token emitted yet (for the space-joined null decoder)
  };
  static Decoder from_json(const nlohmann::json& j, std::string_view path);
  void push(State& state, std::string_view piece, std::string& out) const;
  void finish(State& state, std::string& out) const;
  // What one piece contributes to the decoded text on its own: the raw byte of a byte-fallback piece
  // (byte_piece = true), else the piece after the Replace steps. Exact (their concatenation equals the
  // decoded text) when every byte run is valid UTF-8 and is_concatenation() holds.
  std::string piece_bytes(std::string_view piece, bool& byte_piece) const;
  // False for decoders whose output is not a per-piece concatenation (space-joined null decoder,
  // Replace steps after ByteFallback, which apply to whole byte runs).
  bool is_concatenation() const { return !join_with_space_ && after_bytes_.empty(); }

 private:
  // One piece as the chain sees it at ByteFallback: after the Replace steps before it, and whether
  // ByteFallback takes it as a raw byte.
  struct Piece {
    std::string text;
    bool is_byte = false;
    uint8_t byte = 0;  // when is_byte
  };
  Piece read_piece(std::string_view piece) const;
  void add(const nlohmann::json& j, const std::string& path, bool& fused);
  void emit(State& state, std::string_view token, std::string& out) const;
  void flush_bytes(State& state, std::string& out) const;

  bool join_with_space_ = false;  // no decoder at all
  bool byte_fallback_ = false;
  std::vector<ReplaceRule> before_bytes_;  // Replace steps before ByteFallback (or all of them)
  std::vector<ReplaceRule> after_bytes_;   // Replace steps after ByteFallback
};

// HF ByteFallback's test: exactly "<0x" + 2 chars + ">" where the 2 chars parse as a u8 in base 16
// (Rust's from_str_radix, which also accepts a leading '+').
bool parse_byte_token(std::string_view token, uint8_t& byte);

}  // namespace ug::bpe
