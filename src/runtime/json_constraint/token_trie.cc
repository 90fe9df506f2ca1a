#include "runtime/json_constraint/token_trie.h"

#include <algorithm>
#include <numeric>

#include "tokenizer/bpe_utf8.h"
#include "tokenizer/tokenizer.h"

namespace ug {

std::shared_ptr<const TokenTrie> TokenTrie::build(const Tokenizer& tokenizer) {
  auto t = std::make_shared<TokenTrie>();
  t->bytes_.resize(size_t(tokenizer.vocab_size()));
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) {
    if (tokenizer.is_special(id)) continue;
    bool byte_token = false;
    std::string b = tokenizer.token_bytes(id, &byte_token);
    if (!byte_token && !bpe::is_valid_utf8(b)) continue;
    t->bytes_[size_t(id)] = std::move(b);
  }
  t->index();
  t->split_plain();
  return t;
}

std::shared_ptr<const TokenTrie> TokenTrie::from_strings(const std::vector<std::string>& bytes) {
  auto t = std::make_shared<TokenTrie>();
  t->bytes_ = bytes;
  t->index();
  t->split_plain();
  return t;
}

void TokenTrie::split_plain() {
  const size_t words = (bytes_.size() + 63) / 64;
  auto rest = std::make_shared<TokenTrie>();
  rest->bytes_.resize(bytes_.size());
  std::vector<uint32_t> chars(bytes_.size(), 0);  // 0: not plain
  uint32_t longest = 0;
  for (size_t id = 0; id < bytes_.size(); ++id) {
    const std::string& b = bytes_[id];
    bool plain = !b.empty() && bpe::is_valid_utf8(b);
    uint32_t n = 0;
    for (unsigned char c : b) {
      plain = plain && c >= 0x20 && c != '"' && c != '\\';
      n += (c & 0xC0) != 0x80;
    }
    if (plain) {
      chars[id] = n;
      longest = std::max(longest, n);
    } else {
      rest->bytes_[id] = b;
    }
  }
  plain_by_length_.assign(size_t(longest) + 1, std::vector<uint64_t>(words, 0));
  for (size_t id = 0; id < bytes_.size(); ++id)
    if (chars[id] > 0) plain_by_length_[chars[id]][id >> 6] |= uint64_t(1) << (id & 63);
  for (size_t k = 1; k < plain_by_length_.size(); ++k)
    for (size_t w = 0; w < words; ++w) plain_by_length_[k][w] |= plain_by_length_[k - 1][w];
  rest->index();
  non_plain_ = std::move(rest);
}

// Sorted by bytes, the tokens list the trie in preorder: each token adds the nodes past its longest
// common prefix with the previous one.
void TokenTrie::index() {
  std::vector<int32_t> order;
  for (size_t i = 0; i < bytes_.size(); ++i)
    if (!bytes_[i].empty()) order.push_back(int32_t(i));
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    const int c =
        bytes_[size_t(a)].compare(bytes_[size_t(b)]);  // char_traits<char>: unsigned order
    return c != 0 ? c < 0 : a < b;
  });
  byte_.assign(1, 0);
  depth_.assign(1, 0);
  end_.assign(1, 0);
  std::vector<uint32_t> count(1, 0);
  std::vector<uint32_t> open{0};  // open[d] = node of depth d on the current path
  std::string_view prev;
  for (int32_t id : order) {
    std::string_view s = bytes_[size_t(id)];
    size_t lcp = 0;
    while (lcp < s.size() && lcp < prev.size() && s[lcp] == prev[lcp]) ++lcp;
    for (size_t d = lcp; d < s.size(); ++d) {
      const uint32_t node = uint32_t(byte_.size());
      for (size_t k = d + 1; k < open.size(); ++k) end_[open[k]] = node;  // close deeper nodes
      open.resize(d + 1);
      open.push_back(node);
      byte_.push_back(uint8_t(s[d]));
      depth_.push_back(uint32_t(d + 1));
      end_.push_back(0);
      count.push_back(0);
      max_depth_ = std::max(max_depth_, uint32_t(d + 1));
    }
    ++count[open[s.size()]];
    ids_.push_back(id);
    prev = s;
  }
  for (size_t k = 0; k < open.size(); ++k) end_[open[k]] = uint32_t(byte_.size());
  tok_begin_.assign(byte_.size() + 1, 0);
  std::partial_sum(count.begin(), count.end(), tok_begin_.begin() + 1);
}

}  // namespace ug
