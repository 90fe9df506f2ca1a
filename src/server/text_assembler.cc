#include "server/text_assembler.h"

#include <algorithm>

namespace ug::server {

using nlohmann::json;

TextAssembler::TextAssembler(Backend& backend, Metrics* metrics, ResponseContext ctx,
                             std::vector<std::string> echo_texts, Options options,
                             std::chrono::steady_clock::time_point arrival)
    : backend_(backend),
      ctx_(std::move(ctx)),
      options_(options),
      latency_(metrics, arrival, echo_texts.size()) {
  for (size_t i = 0; i < echo_texts.size(); ++i) {
    Choice c;
    c.result.index = int64_t(i);
    c.result.logprobs_requested = options_.logprobs;
    c.echo = std::move(echo_texts[i]);
    c.result.text = c.echo;
    c.result.text_offset = int64_t(c.echo.size());
    choices_.push_back(std::move(c));
  }
}

void TextAssembler::emit(Choice& c, const std::string& text, const std::string& finish,
                         std::vector<json>& out) {
  if (!options_.stream) return;
  std::string piece = text;
  if (!c.echo_sent) {
    piece = c.echo + piece;
    c.echo_sent = true;
  }
  if (piece.empty() && finish.empty() && c.pending_logprobs.empty()) return;
  json lp = nullptr;
  if (options_.logprobs) {
    lp = text_logprobs_json(c.pending_logprobs, int64_t(c.result.text.size() - text.size()));
    c.pending_logprobs.clear();
  }
  out.push_back(text_chunk_json(ctx_, c.result.index, piece, finish, lp, options_.include_usage));
}

std::vector<json> TextAssembler::consume(const std::vector<SequenceEvent>& events) {
  std::vector<json> out;
  for (const SequenceEvent& e : events) {
    if (e.choice >= choices_.size()) continue;
    Choice& c = choices_[e.choice];
    if (!e.done) {
      latency_.token(e);
      if (options_.logprobs)
        if (auto lp = token_logprob(e.token, backend_)) {
          c.result.logprobs.push_back(*lp);
          c.pending_logprobs.push_back(std::move(*lp));
        }
      c.result.text += e.token.text;
      emit(c, e.token.text, "", out);
      continue;
    }
    latency_.done(e);
    c.done = e.result;
    if (auto err = sequence_error(e.result)) {
      if (!error_) error_ = err;
      continue;
    }
    c.result.text += e.result.tail_text;
    c.result.finish_reason = api_finish_reason(e.result.finish, false);
    emit(c, e.result.tail_text, c.result.finish_reason, out);
  }
  return out;
}

Usage TextAssembler::usage() const {
  Usage u;
  for (const Choice& c : choices_) {
    if (c.result.index % std::max<int64_t>(options_.n, 1) == 0) {
      u.prompt_tokens += c.done.prompt_tokens;
      u.cached_tokens += c.done.cached_prompt_tokens;
    }
    u.completion_tokens += c.done.generated_tokens;
  }
  return u;
}

std::vector<json> TextAssembler::stream_tail() const {
  if (!options_.include_usage) return {};
  return {text_usage_chunk_json(ctx_, usage())};
}

json TextAssembler::response() const {
  std::vector<TextChoice> list;
  for (const Choice& c : choices_) list.push_back(c.result);
  return text_completion_json(ctx_, list, usage());
}

}  // namespace ug::server
