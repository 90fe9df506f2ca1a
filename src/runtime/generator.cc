#include "runtime/generator.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "core/error.h"
#include "runtime/stop_matcher.h"
#include "tokenizer/detokenizer.h"
#include "tokenizer/tokenizer.h"

namespace ug {

std::string_view finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::Stop: return "stop";
    case FinishReason::StopString: return "stop_string";
    case FinishReason::Length: return "length";
    case FinishReason::Cancelled: return "cancelled";
    case FinishReason::ContextFull: return "context_full";
  }
  return "?";
}

Generator::Generator(Decoder& decoder, const Tokenizer* tokenizer) : decoder_(decoder), tokenizer_(tokenizer) {}

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

GenerationResult Generator::generate(const GenerationRequest& req, KvCache& cache, std::vector<int32_t>& history,
                                     const GenerationCallbacks& cb) {
  const auto& text_cfg = decoder_.config().text;
  UG_CHECK(req.max_new_tokens >= 0, "generate: max_new_tokens must be >= 0, got {}", req.max_new_tokens);
  UG_CHECK(req.stop_strings.empty() || tokenizer_, "generate: stop strings need a tokenizer");
  UG_CHECK(int64_t(history.size()) >= cache.size(), "generate: history ({}) shorter than the cache ({})",
           history.size(), cache.size());
  Sampler sampler(req.sampling, int32_t(text_cfg.vocab_size));
  GenerationResult result;

  // Tokens of the history not yet in the cache (e.g. the stop id that ended the previous reply) go first.
  const size_t pending = history.size() - size_t(cache.size());
  std::vector<int32_t> feed(history.end() - int64_t(pending), history.end());
  feed.insert(feed.end(), req.prompt.begin(), req.prompt.end());
  UG_CHECK(!feed.empty(), "generate: nothing to process (empty prompt and no pending context)");
  std::vector<int32_t> block_ids;
  std::vector<const float*> overrides;
  if (!req.block_ids.empty()) {
    block_ids.assign(pending, -1);
    block_ids.insert(block_ids.end(), req.block_ids.begin(), req.block_ids.end());
  }
  if (!req.embeddings_override.empty()) {
    overrides.assign(pending, nullptr);
    overrides.insert(overrides.end(), req.embeddings_override.begin(), req.embeddings_override.end());
  }
  UG_CHECK(cache.size() + int64_t(feed.size()) <= text_cfg.max_position_embeddings,
           "prompt of {} tokens does not fit the context ({} of {} positions used)", feed.size(), cache.size(),
           text_cfg.max_position_embeddings);

  std::vector<float> logits;
  auto t0 = std::chrono::steady_clock::now();
  decoder_.forward({.token_ids = feed, .embeddings_override = overrides, .block_ids = block_ids}, cache,
                   LogitsMode::Last, logits);
  history.insert(history.end(), req.prompt.begin(), req.prompt.end());
  result.stats.prompt_tokens = int64_t(feed.size());
  result.stats.prefill_seconds = seconds_since(t0);

  std::optional<IncrementalDetokenizer> detok;
  if (tokenizer_) detok.emplace(*tokenizer_);
  StopMatcher stops(req.stop_strings);
  auto emit = [&](const std::string& s) {
    if (s.empty()) return;
    result.text += s;
    if (cb.on_text) cb.on_text(s);
  };

  const size_t context_before = history.size();
  // Decode steps take the backend's argmax or top-k candidates when the sampler needs nothing else (on a GPU: a few
  // bytes back instead of the 1 MB row); the same tokens as from the row (the scheduler does the same).
  const SamplingParams& sp = req.sampling;
  const bool by_argmax = !req.constraint && sampler.argmax_is_enough();
  const bool by_top_k = !req.constraint && sampler.samples_from_top_k() && sp.top_k <= kMaxTopLogitsK;
  bool from_row = true;  // the prompt's logits came back whole
  int32_t argmax = 0;
  TopLogits top{.k = sp.top_k};
  auto next_token = [&]() -> int32_t {
    if (from_row) {
      if (req.constraint) req.constraint->mask_logits(logits);
      return sampler.sample(logits, std::span<const int32_t>(history.data(), context_before), result.tokens);
    }
    if (by_argmax) {
      UG_CHECK(argmax >= 0, "Sampler: the logits hold NaN or +inf");
      return argmax;
    }
    return sampler.sample_top(top);
  };

  auto t1 = std::chrono::steady_clock::now();
  for (int64_t step = 0; step < req.max_new_tokens; ++step) {
    if (cb.cancel && cb.cancel->load()) {
      result.finish = FinishReason::Cancelled;
      break;
    }
    int32_t id = next_token();
    if (req.constraint) req.constraint->accept(id);
    result.tokens.push_back(id);
    history.push_back(id);
    if (cb.on_token) cb.on_token(id);
    if (std::find(req.stop_ids.begin(), req.stop_ids.end(), id) != req.stop_ids.end()) {
      result.finish = FinishReason::Stop;
      break;
    }
    if (detok) {
      auto r = stops.push(detok->push(id));
      emit(r.emit);
      if (r.stopped) {
        result.finish = FinishReason::StopString;
        break;
      }
    }
    if (step + 1 == req.max_new_tokens) break;  // FinishReason::Length
    if (cache.size() >= text_cfg.max_position_embeddings) {
      result.finish = FinishReason::ContextFull;
      break;
    }
    int32_t one[1] = {id};
    if (by_argmax || by_top_k) {
      BatchItem item{.input = {.token_ids = one}, .cache = &cache, .mode = LogitsMode::Last};
      if (by_argmax) item.argmax = &argmax;
      if (!by_argmax) item.top_logits = &top;
      item.argmax_excluded = sp.suppress_tokens;
      decoder_.forward_batch({&item, 1});
      from_row = false;
    } else {
      decoder_.forward({.token_ids = one}, cache, LogitsMode::Last, logits);
    }
  }
  if (detok && result.finish != FinishReason::StopString) {
    emit(stops.push(detok->flush()).emit);
    emit(stops.flush());
  }
  result.stats.generated_tokens = int64_t(result.tokens.size());
  result.stats.decode_seconds = seconds_since(t1);
  return result;
}

}  // namespace ug
