#include "runtime/json_constraint/output_constraint.h"

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace ug {

std::unique_ptr<JsonConstraint> JsonConstraintFactory::make(const OutputConstraint& c,
                                                            std::vector<int32_t> stop_ids) {
  UG_CHECK(c.json != nullptr, "JsonConstraintFactory: no grammar");
  std::call_once(trie_once_, [&] { trie_ = TokenTrie::build(tokenizer_); });
  std::shared_ptr<JsonMaskProvider> provider;
  {
    std::lock_guard lk(mu_);
    for (auto it = providers_.begin(); it != providers_.end(); ++it)
      if ((*it)->grammar().key() == c.json->key()) {
        provider = *it;
        providers_.splice(providers_.begin(), providers_, it);
        break;
      }
    if (!provider) {
      provider = std::make_shared<JsonMaskProvider>(c.json, trie_);
      providers_.push_front(provider);
      if (providers_.size() > kCachedGrammars) providers_.pop_back();
    }
  }
  auto id = [&](const char* piece) { return tokenizer_.token_to_id(piece).value_or(-1); };
  JsonConstraintOptions o{.stop_ids = std::move(stop_ids)};
  if (c.allow_thought) {
    o.thought_open = id("<|channel>");
    o.thought_close = id("<channel|>");
  }
  if (c.allow_tool_calls) o.tool_call_open = id("<|tool_call>");
  return std::make_unique<JsonConstraint>(std::move(provider), std::move(o));
}

}  // namespace ug
