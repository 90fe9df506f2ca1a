// Byte-level recognizer of the texts a JsonGrammar allows: a pushdown automaton whose state is a
// set of stacks (several only while anyOf alternatives are all still possible). step() feeds one
// byte; a stack survives only if the text so far can still be completed, so an empty set means "not
// a viable prefix" and a non-empty one always has a completion (the grammar prunes unsatisfiable
// parts). This is both the oracle for token masks (advance over a whole string) and the inner loop
// of the trie walk (token_mask.h).
//
// What is checked: RFC 8259 syntax (numbers, string escapes, \u surrogate pairs, UTF-8 validity
// with no overlongs or surrogates, no raw control characters; numbers have at most 20 integer, 20
// fraction and 2 exponent digits so that they fit a double), whitespace runs bounded by
// JsonGrammarLimits::max_whitespace_run with at most one '\n', nesting bounded by max_depth, and
// the grammar's object keys / required properties / lengths / counts / literals.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/json_constraint/json_grammar.h"

namespace ug {

enum class FrameKind : uint8_t { kRoot, kObject, kArray, kString, kKey, kNumber, kLiteral };

// One level of a matcher stack. Plain bytes (no padding): stacks are compared and hashed as memory.
struct JsonFrame {
  int32_t node = -1;  // grammar node
  FrameKind kind = FrameKind::kRoot;
  uint8_t phase = 0;  // per kind (see json_matcher.cc)
  uint8_t ws = 0;     // current whitespace run: bits 0-6 its length, bit 7 a '\n' in it
  uint8_t sub = 0;    // string scanner state
  uint32_t a = 0;  // array: items so far; string: code points so far; literal: trie node; key: \u
                   // code unit being read; number: digits in the current part
  uint32_t b = 0;  // object: node of the value being read; string: \u code unit; key: bytes read
  uint64_t mask = 0;  // object: declared properties already written; key: names still matching
};
static_assert(sizeof(JsonFrame) == 24);

// A set of stacks stored flat; reused across steps so the hot loop does not allocate.
class JsonStackSet {
 public:
  size_t size() const { return ends_.size(); }
  bool empty() const { return ends_.empty(); }
  std::span<const JsonFrame> operator[](size_t i) const {
    const size_t begin = i == 0 ? 0 : ends_[i - 1];
    return {frames_.data() + begin, ends_[i] - begin};
  }
  void clear() {
    frames_.clear();
    ends_.clear();
  }
  // The state as bytes (equal sets with their stacks in the same order give equal bytes).
  std::string key() const;
  bool operator==(const JsonStackSet& o) const;

 private:
  friend class JsonMatcher;
  std::vector<JsonFrame> frames_;
  std::vector<uint32_t> ends_;  // stack i = frames_[ends_[i-1], ends_[i])
};

class JsonMatcher {
 public:
  explicit JsonMatcher(const JsonGrammar& grammar) : g_(grammar) {}

  // Before any byte: a Root frame (leading whitespace, then the root value).
  JsonStackSet initial() const;
  // out = every stack that a stack of `in` becomes after byte b (duplicates removed); `out` is
  // cleared first and must not be `in`.
  void step(const JsonStackSet& in, uint8_t b, JsonStackSet& out) const;
  // The text so far is a complete value (plus allowed trailing whitespace): the reply may end.
  bool accepts(const JsonStackSet& state) const;
  // Slow path: the state after every byte of `text`; empty when some prefix is not viable.
  JsonStackSet advance(const JsonStackSet& from, std::string_view text) const;

  // When `state` is one stack inside a string (a value, or a key of an object without declared
  // properties) at a character boundary: how many more characters it may take (kUnbounded: no
  // limit). Any "plain" text (no '"', '\\' or control characters, whole UTF-8 characters) of at
  // most that many characters then keeps it viable. nullopt otherwise.
  std::optional<uint32_t> plain_string_room(const JsonStackSet& state) const;

  static constexpr size_t kMaxStacks = 32;  // more alternatives alive at once are dropped (sound)

 private:
  // kOk: b consumed; kClose: b consumed and closes the top frame; kPop: the top frame ended before
  // b (b goes to its parent); kFail: not viable; kDone: the handler committed or dropped itself.
  enum class Act { kOk, kClose, kPop, kFail, kDone };
  void feed(JsonStackSet& out, size_t start, uint8_t b) const;
  void start_value(JsonStackSet& out, size_t start, int32_t node, uint8_t b, int guard) const;
  Act on_root(JsonStackSet& out, size_t start, uint8_t b) const;
  Act on_object(JsonStackSet& out, size_t start, uint8_t b) const;
  Act on_key(JsonStackSet& out, size_t start, uint8_t b) const;
  Act on_array(JsonStackSet& out, size_t start, uint8_t b) const;
  Act on_string(JsonFrame& f, uint8_t b) const;
  Act on_number(JsonFrame& f, uint8_t b) const;
  Act on_literal(JsonFrame& f, uint8_t b) const;
  bool whitespace(JsonFrame& f, uint8_t b, bool& ok) const;
  bool push(JsonStackSet& out, size_t start, JsonFrame f) const;
  static void dedupe(JsonStackSet& s);

  const JsonGrammar& g_;
};

}  // namespace ug
