// A multi-turn conversation held as tokens in one KV cache. Each user turn is rendered with the chat
// template and appended; the model's reply (including the <turn|> that ended it) stays in the context
// exactly as generated, so nothing is re-encoded or recomputed between turns.
#pragma once

#include <string>
#include <vector>

#include "runtime/engine.h"
#include "runtime/generator.h"
#include "runtime/json_constraint/output_constraint.h"

namespace ug {

struct ChatOptions {
  std::string system;
  bool enable_thinking = false;
  bool raw = false;  // no template: the user text is the prompt itself
  int64_t max_new_tokens = 512;
  std::vector<std::string> stop_strings;
  SamplingParams sampling;
  std::shared_ptr<const JsonGrammar> json;  // set: every reply is constrained to this JSON grammar
};

class ChatSession {
 public:
  ChatSession(Engine& engine, ChatOptions options);

  // Media are placed before the text, in order (a /image in the terminal chat, --image on the command line).
  GenerationResult send(const std::string& user_text, const GenerationCallbacks& callbacks = {},
                        std::span<const MediaSource> media = {});
  void reset();
  const std::vector<int32_t>& history() const { return history_; }

  // The text appended for a user turn (exposed for tests).
  std::string turn_text(const std::string& user_text, std::span<const MediaSource> media = {}) const;

 private:
  Engine& engine_;
  ChatOptions options_;
  KvCache cache_;
  std::vector<int32_t> history_;
  FinishReason last_finish_ = FinishReason::Stop;
  int32_t turn_end_id_ = -1;  // <turn|>
  std::unique_ptr<JsonConstraintFactory> json_factory_;  // with options.json
};

}  // namespace ug
