#include "server/engine_backend.h"

#include <algorithm>

#include "core/error.h"
#include "tokenizer/chat_template.h"

namespace ug::server {

EngineBackend::EngineBackend(Engine& engine, SchedulerOptions scheduler_options) : engine_(engine) {
  UG_CHECK(engine_.tokenizer.has_value(), "serve: the model needs a tokenizer (tokenizer.json)");
  const Tokenizer& tok = *engine_.tokenizer;
  info_.context_length = scheduler_options.max_context > 0
                             ? std::min<int64_t>(scheduler_options.max_context,
                                                 engine_.model->config.text.max_position_embeddings)
                             : engine_.model->config.text.max_position_embeddings;
  info_.default_sampling = default_sampling(engine_.model->generation);
  for (auto id : engine_.model->generation.eos_token_ids) info_.stop_ids.push_back(int32_t(id));
  // A reply ends at <turn|>; a tool call ends at <|tool_response> (the host answers it).
  for (const char* piece : {"<turn|>", "<|tool_response>"})
    if (auto id = tok.token_to_id(piece))
      if (std::find(info_.stop_ids.begin(), info_.stop_ids.end(), *id) == info_.stop_ids.end())
        info_.stop_ids.push_back(*id);
  // The request threads wait on bus_: woken once per scheduler step (after any hook the caller set).
  scheduler_options.after_callbacks = [bus = bus_, then = std::move(scheduler_options.after_callbacks)] {
    bus->wake();
    if (then) then();
  };
  scheduler_ = std::make_unique<Scheduler>(engine_, scheduler_options);
}

EngineBackend::~EngineBackend() = default;

PromptInput EngineBackend::chat_prompt(const nlohmann::json& messages,
                                       const ChatTemplateOptions& options,
                                       const std::string& forced_prefix,
                                       std::span<const MediaSource> media) {
  // Only the media parts' placeholders are media slots; the same text in a re-sent reply is the literal token.
  RenderedChat chat = render_chat_with_media(messages, options);
  const std::string text = chat.text + forced_prefix;
  if (!media.empty() || !chat.media_at.empty()) {
    UG_CHECK(engine_.media != nullptr, "this model cannot take images, audio or video");
    return engine_.media->assemble_text(text, chat.media_at, media);
  }
  PromptInput p;
  p.tokens = engine_.tokenizer->encode(text);
  return p;
}

PromptInput EngineBackend::text_prompt(const CompletionPrompt& prompt) {
  const Tokenizer& tok = *engine_.tokenizer;
  PromptInput p;
  if (!prompt.ids.empty()) {
    for (size_t i = 0; i < prompt.ids.size(); ++i)
      UG_CHECK(prompt.ids[i] >= 0 && prompt.ids[i] < tok.vocab_size(),
               "prompt[{}]: token id {} is outside the vocabulary [0, {})", i, prompt.ids[i],
               tok.vocab_size());
    p.tokens = prompt.ids;
    return p;
  }
  p.tokens = tok.encode(prompt.text);
  // Gemma needs <bos> first; the tokenizer never adds it, so add it unless the text starts with it.
  if (tok.bos_id() >= 0 && (p.tokens.empty() || p.tokens.front() != tok.bos_id()))
    p.tokens.insert(p.tokens.begin(), tok.bos_id());
  return p;
}

std::string EngineBackend::token_text(int32_t id) const {
  const int32_t one[1] = {id};
  return engine_.tokenizer->decode(one);
}

uint64_t EngineBackend::submit(SequenceParams params, SequenceCallbacks callbacks) {
  return scheduler_->submit(std::move(params), std::move(callbacks));
}

void EngineBackend::cancel(uint64_t id) { scheduler_->cancel(id); }

SchedulerStats EngineBackend::stats() const { return scheduler_->stats(); }

void EngineBackend::shutdown(bool finish_running) { scheduler_->shutdown(finish_running); }

}  // namespace ug::server
