// Constrained decoding for one sequence: response_format json_object / json_schema. Before each
// sampling step mask_logits() sets every token that would make the generated text stop being a
// viable prefix of an allowed JSON value to -inf; accept() advances with the chosen token.
//
// The reply may begin, before the JSON, with a thought channel (thought_open ... thought_close;
// free text, stop ids forbidden inside so the channel gets closed) and, where tools are declared,
// with a tool call (tool_call_open: the rest of the reply is then not constrained). Stop ids are
// allowed only once the JSON value is complete; after it only whitespace (bounded) and stop ids
// are.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "runtime/json_constraint/token_mask.h"

namespace ug {

struct JsonConstraintOptions {
  std::vector<int32_t> stop_ids;
  int32_t thought_open = -1;  // >= 0 (with thought_close): a leading thought channel is allowed
  int32_t thought_close = -1;
  int32_t tool_call_open = -1;  // >= 0: the reply may start with a tool call instead of JSON
};

class JsonConstraint {
 public:
  // `provider` is shared by the sequences that use the same grammar (same thread).
  JsonConstraint(std::shared_ptr<JsonMaskProvider> provider, JsonConstraintOptions options);

  // logits: [vocab]; ids past the trie's vocabulary are masked too.
  void mask_logits(std::span<float> logits);
  // Throws ug::Error if `id` is not allowed in the current state.
  void accept(int32_t id);
  // The JSON value is complete (a stop id may end the reply now, or has ended it).
  bool complete() const;
  bool constrained() const { return phase_ == Phase::kStart || phase_ == Phase::kJson; }

 private:
  enum class Phase { kStart, kThought, kJson, kFree, kEnded };
  bool is_stop(int32_t id) const;

  std::shared_ptr<JsonMaskProvider> provider_;
  JsonConstraintOptions options_;
  Phase phase_ = Phase::kStart;
  bool thought_done_ = false;
  JsonStackSet state_, scratch_;
};

}  // namespace ug
