#include "runtime/chat_session.h"

#include "core/error.h"
#include "tokenizer/chat_template.h"

namespace ug {
namespace {
int64_t soft_token_count(const PromptInput& input) {
  int64_t n = 0;
  for (const MediaSpan& s : input.media) n += s.count;
  return n;
}
}  // namespace

ChatSession::ChatSession(Engine& engine, ChatOptions options)
    : engine_(engine), options_(std::move(options)), cache_(engine.decoder->new_cache()) {
  UG_CHECK(engine_.tokenizer.has_value(), "chat needs a tokenizer");
  turn_end_id_ = engine_.tokenizer->token_to_id("<turn|>").value_or(-1);
  options_.sampling.validate();
  if (options_.json) json_factory_ = std::make_unique<JsonConstraintFactory>(*engine_.tokenizer);
}

void ChatSession::reset() {
  cache_.clear();
  history_.clear();
  last_finish_ = FinishReason::Stop;
}

std::string ChatSession::turn_text(const std::string& user_text, std::span<const MediaSource> media) const {
  if (options_.raw) {
    UG_CHECK(media.empty(), "--raw prompts cannot carry media (the chat template places them)");
    return user_text;
  }
  nlohmann::json messages = nlohmann::json::array();
  bool first = history_.empty();
  if (first && !options_.system.empty()) messages.push_back({{"role", "system"}, {"content", options_.system}});
  nlohmann::json content = user_text;
  if (!media.empty()) {
    content = nlohmann::json::array();
    for (const MediaSource& m : media) content.push_back({{"type", std::string(media_kind_name(m.kind))}});
    if (!user_text.empty()) content.push_back({{"type", "text"}, {"text", user_text}});
  }
  messages.push_back({{"role", "user"}, {"content", content}});
  // Later turns are rendered alone with thinking off (so no system block is emitted); with thinking on,
  // the pre-closed empty thought channel that thinking-off adds to the generation prompt is removed.
  ChatTemplateOptions t{.add_generation_prompt = true, .enable_thinking = first && options_.enable_thinking};
  std::string text = render_chat(messages, t);
  if (first) return text;
  const std::string bos = "<bos>", empty_thought = "<|channel>thought\n<channel|>";
  if (text.rfind(bos, 0) == 0) text.erase(0, bos.size());
  if (options_.enable_thinking && text.size() >= empty_thought.size() &&
      text.compare(text.size() - empty_thought.size(), empty_thought.size(), empty_thought) == 0)
    text.erase(text.size() - empty_thought.size());
  // Close the previous model turn the way the template does: "<turn|>\n".
  bool ended_by_turn_end = !history_.empty() && history_.back() == turn_end_id_;
  return (ended_by_turn_end ? "\n" : "<turn|>\n") + text;
}

GenerationResult ChatSession::send(const std::string& user_text, const GenerationCallbacks& callbacks,
                                   std::span<const MediaSource> media) {
  const Tokenizer& tok = *engine_.tokenizer;
  GenerationRequest req;
  PromptInput input = engine_.media->assemble_text(turn_text(user_text, media), media);
  const int64_t context = engine_.model->config.text.max_position_embeddings;
  UG_CHECK(cache_.size() + input.size() < context,
           "this turn needs {} tokens ({} of them for media) after {} in the conversation, but the context holds {}; "
           "use fewer or shorter media (e.g. --image-tokens, --video-fps) or /reset",
           input.size(), soft_token_count(input), cache_.size(), context);
  const std::vector<const float*> rows = input.override_rows(0, input.size(), engine_.model->config.text.hidden_size);
  req.prompt = input.tokens;
  if (input.has_media()) {
    req.embeddings_override = rows;
    req.block_ids = input.block_ids;
  }
  if (options_.raw && history_.empty() && tok.add_bos() && tok.bos_id() >= 0)
    req.prompt.insert(req.prompt.begin(), tok.bos_id());
  req.sampling = options_.sampling;
  req.max_new_tokens = options_.max_new_tokens;
  for (auto id : engine_.model->generation.eos_token_ids) req.stop_ids.push_back(int32_t(id));
  if (turn_end_id_ >= 0 && !options_.raw) req.stop_ids.push_back(turn_end_id_);
  req.stop_strings = options_.stop_strings;
  std::unique_ptr<JsonConstraint> constraint;
  if (json_factory_) {
    constraint = json_factory_->make({.json = options_.json, .allow_thought = options_.enable_thinking},
                                     req.stop_ids);
    req.constraint = constraint.get();
  }
  Generator gen(*engine_.decoder, &tok);
  GenerationResult r = gen.generate(req, cache_, history_, callbacks);
  last_finish_ = r.finish;
  return r;
}

}  // namespace ug
