// Added-token splitting as HF's AddedVocabulary does it: a trie over the token contents, scanned
// with leftmost-longest semantics (equivalent to aho-corasick MatchKind::LeftmostLongest).
#pragma once

#include <bitset>
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ug::bpe {

struct Segment {
  std::string_view text;  // the span of the input
  int32_t token = -1;     // id of the added token that matched it, or -1 for ordinary text
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher();
  void add(std::string_view content, int32_t id);  // empty contents never match (as in HF)
  bool empty() const { return count_ == 0; }

  // Splits `text` into alternating ordinary spans and matched tokens; empty spans are omitted.
  void split(std::string_view text, std::vector<Segment>& out) const;

 private:
  struct Node {
    int32_t token = -1;
  };
  // Length of the longest match starting at `pos` (0 if none) and its token id.
  size_t longest_at(std::string_view text, size_t pos, int32_t& token) const;
  int32_t child(int32_t node, uint8_t byte) const {
    auto it = edges_.find((uint64_t(uint32_t(node)) << 8) | byte);
    return it == edges_.end() ? -1 : it->second;
  }

  std::vector<Node> nodes_;
  std::unordered_map<uint64_t, int32_t> edges_;  // (node << 8 | byte) -> child node
  std::bitset<256> first_bytes_;
  size_t count_ = 0;
};

}  // namespace ug::bpe
