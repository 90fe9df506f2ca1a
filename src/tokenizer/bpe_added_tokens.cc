#include "tokenizer/bpe_added_tokens.h"

namespace ug::bpe {

AddedTokenMatcher::AddedTokenMatcher() : nodes_(1) {}

void AddedTokenMatcher::add(std::string_view content, int32_t id) {
  if (content.empty()) return;
  int32_t node = 0;
  for (char ch : content) {
    uint8_t b = uint8_t(ch);
    int32_t next = child(node, b);
    if (next < 0) {
      next = int32_t(nodes_.size());
      nodes_.emplace_back();
      edges_.emplace((uint64_t(uint32_t(node)) << 8) | b, next);
    }
    node = next;
  }
  if (nodes_[size_t(node)].token < 0) ++count_;
  nodes_[size_t(node)].token = id;
  first_bytes_.set(uint8_t(content[0]));
}

size_t AddedTokenMatcher::longest_at(std::string_view text, size_t pos, int32_t& token) const {
  size_t best = 0;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    node = child(node, uint8_t(text[i]));
    if (node < 0) break;
    if (nodes_[size_t(node)].token >= 0) {
      best = i + 1 - pos;
      token = nodes_[size_t(node)].token;
    }
  }
  return best;
}

void AddedTokenMatcher::split(std::string_view text, std::vector<Segment>& out) const {
  size_t start = 0, pos = 0;
  while (pos < text.size()) {
    int32_t token = -1;
    size_t len = first_bytes_.test(uint8_t(text[pos])) ? longest_at(text, pos, token) : 0;
    if (len == 0) {
      ++pos;
      continue;
    }
    if (pos > start) out.push_back(Segment{text.substr(start, pos - start), -1});
    out.push_back(Segment{text.substr(pos, len), token});
    pos += len;
    start = pos;
  }
  if (start < text.size()) out.push_back(Segment{text.substr(start), -1});
}

}  // namespace ug::bpe
