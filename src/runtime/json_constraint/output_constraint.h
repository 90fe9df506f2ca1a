// What a request asks of its output beyond sampling (response_format), and the factory that turns
// it into a per-sequence JsonConstraint: it builds the vocabulary trie once (on first use, ~0.25 s
// for 262k tokens) and shares one mask cache (JsonMaskProvider) among the sequences of equal
// grammars.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <vector>

#include "runtime/json_constraint/json_constraint.h"

namespace ug {

class Tokenizer;

struct OutputConstraint {
  std::shared_ptr<const JsonGrammar> json;  // null: unconstrained
  bool allow_thought = false;     // the reply may begin with a thought channel (thinking is on)
  bool allow_tool_calls = false;  // the reply may be a tool call instead (tools, tool_choice auto)
};

class JsonConstraintFactory {
 public:
  // The tokenizer must outlive the factory.
  explicit JsonConstraintFactory(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}

  // Thread-safe. The constraint (and the mask cache it shares) must then be used by one thread at a
  // time: every sequence of one scheduler is stepped on the scheduler thread.
  std::unique_ptr<JsonConstraint> make(const OutputConstraint& c, std::vector<int32_t> stop_ids);

  static constexpr size_t kCachedGrammars = 8;  // mask caches kept for grammars no longer in use

 private:
  const Tokenizer& tokenizer_;
  std::once_flag trie_once_;
  std::shared_ptr<const TokenTrie> trie_;
  std::mutex mu_;
  std::list<std::shared_ptr<JsonMaskProvider>> providers_;  // most recently used first
};

}  // namespace ug
