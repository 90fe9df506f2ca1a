// The vocabulary as a byte trie for token masks: every token that can appear in generated JSON
// text, keyed by the exact bytes it adds to the decoded text (Tokenizer::token_bytes: "▁" -> " ",
// <0xNN> -> that byte). Nodes are stored in preorder (children in byte order) with the end of each
// subtree, so a walk is one loop over arrays that skips a dead subtree in one jump.
//
// Left out (never allowed by a JSON mask): special tokens, tokens with no bytes, and non-byte
// tokens whose bytes are not valid UTF-8 on their own. Byte-fallback tokens are single bytes; the
// matcher's UTF-8 check makes every run of them a whole character, which is what the detokenizer
// then emits.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ug {

class Tokenizer;

class TokenTrie {
 public:
  static std::shared_ptr<const TokenTrie> build(const Tokenizer& tokenizer);
  // Tests: token i has bytes[i]; an empty string leaves token i out.
  static std::shared_ptr<const TokenTrie> from_strings(const std::vector<std::string>& bytes);

  int32_t vocab_size() const { return int32_t(bytes_.size()); }
  std::string_view bytes(int32_t id) const { return bytes_[size_t(id)]; }  // "" = left out
  size_t nodes() const { return byte_.size(); }  // node 0 is the root (the empty string)
  uint8_t byte(size_t node) const { return byte_[node]; }
  uint32_t depth(size_t node) const { return depth_[node]; }
  uint32_t subtree_end(size_t node) const { return end_[node]; }
  // Tokens whose bytes end exactly at `node`.
  const int32_t* tokens_begin(size_t node) const { return ids_.data() + tok_begin_[node]; }
  const int32_t* tokens_end(size_t node) const { return ids_.data() + tok_begin_[node + 1]; }
  uint32_t max_depth() const { return max_depth_; }

  // "Plain" tokens: text without '"', '\\' or control characters, made of whole UTF-8 characters
  // (most of a vocabulary), which inside a JSON string only their length can rule out.
  // plain_up_to(k): bits of the plain tokens of at most k characters; non_plain(): the trie of the
  // other tokens (same ids).
  const std::vector<uint64_t>& plain_up_to(uint32_t chars) const {
    return plain_by_length_[std::min<size_t>(chars, plain_by_length_.size() - 1)];
  }
  const TokenTrie& non_plain() const { return *non_plain_; }

 private:
  void index();  // builds the node arrays from bytes_
  void split_plain();

  std::vector<std::string> bytes_;   // by token id
  std::vector<uint8_t> byte_;        // by node: the byte on the edge into it
  std::vector<uint32_t> depth_;      // by node: length of its string
  std::vector<uint32_t> end_;        // by node: first node after its subtree
  std::vector<uint32_t> tok_begin_;  // by node (+1): range into ids_
  std::vector<int32_t> ids_;
  uint32_t max_depth_ = 0;
  std::vector<std::vector<uint64_t>> plain_by_length_;  // [k]: plain tokens of <= k characters
  std::shared_ptr<const TokenTrie> non_plain_;
};

}  // namespace ug
