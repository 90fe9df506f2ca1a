// A scripted Backend for the server tests: no model. Prompts are rendered with the real chat
// template and "tokenized" one token per byte; each sequence replays a script of text pieces (one
// token each) on its own thread, honouring cancel(), deadlines, max_new_tokens and a bounded queue
// like the Scheduler.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "core/error.h"
#include "server/backend.h"

namespace ug::server::test {

class FakeBackend final : public Backend {
 public:
  static constexpr int32_t kEos = 1, kTurnEnd = 106;

  FakeBackend() {
    info_.context_length = 4096;
    info_.default_sampling = SamplingParams{};
    info_.stop_ids = {kEos, kTurnEnd};
  }
  ~FakeBackend() override {
    for (auto& t : threads_) t.join();
  }

  // What each sequence generates (pieces = tokens); default "Hello world".
  std::function<std::vector<std::string>(const SequenceParams&)> script =
      [](const SequenceParams&) {
        return std::vector<std::string>{"Hello", " world"};
      };
  std::chrono::milliseconds token_delay{1};
  int64_t max_waiting = 1000;    // concurrently active sequences before QueueFull
  bool fail_generation = false;  // on_done with an engine error

  const BackendInfo& info() const override { return info_; }

  PromptInput chat_prompt(const nlohmann::json& messages, const ChatTemplateOptions& options,
                          const std::string& forced_prefix,
                          std::span<const MediaSource> media) override {
    RenderedChat chat = render_chat_with_media(messages, options);
    std::string text = chat.text + forced_prefix;
    UG_CHECK(chat.media_at.size() == media.size(), "{} media placeholders for {} media items", chat.media_at.size(),
             media.size());
    for (const auto& m : media)
      UG_CHECK(m.bytes && m.bytes->size() >= 3 &&
                   std::string(m.bytes->begin(), m.bytes->begin() + 3) != "BAD",
               "{}: corrupt media (not a PNG, JPEG, WebP or GIF)", m.name);
    std::lock_guard lock(mutex_);
    last_prompt_text = text;
    last_media = std::vector<MediaSource>(media.begin(), media.end());
    return bytes_prompt(text);
  }

  PromptInput text_prompt(const CompletionPrompt& prompt) override {
    if (!prompt.ids.empty()) return PromptInput{.tokens = prompt.ids};
    return bytes_prompt("<bos>" + prompt.text);
  }

  std::string token_text(int32_t id) const override { return fmt::format("t{}", id); }

  uint64_t submit(SequenceParams params, SequenceCallbacks callbacks) override {
    std::lock_guard lock(mutex_);
    if (active_ >= max_waiting) throw QueueFull("fake: queue full");
    params.sampling.validate();
    const uint64_t id = next_id_++;
    ++active_;
    submitted.push_back(params);
    auto pieces = script(params);
    threads_.emplace_back([this, id, params = std::move(params), callbacks = std::move(callbacks),
                           pieces] { run(id, params, callbacks, pieces); });
    return id;
  }

  void cancel(uint64_t id) override {
    std::lock_guard lock(mutex_);
    cancel_requests_[id] = true;
    ++cancel_calls;
  }

  SchedulerStats stats() const override {
    std::lock_guard lock(mutex_);
    SchedulerStats s;
    s.running = active_;
    s.kv_bytes_used = 10;
    s.kv_bytes_budget = 100;
    s.step_seconds = 2.5;
    s.forward_seconds = 2.0;
    s.admit_seconds = 0.125;
    s.stream_seconds = 0.25;
    return s;
  }

  int64_t active() const {
    std::lock_guard lock(mutex_);
    return active_;
  }
  int64_t cancelled_sequences() const { return cancelled_.load(); }

  // Inspection (guarded by mutex_ while sequences run; read after they end).
  std::vector<SequenceParams> submitted;
  std::string last_prompt_text;
  std::vector<MediaSource> last_media;
  std::atomic<int64_t> cancel_calls{0};

 private:
  static PromptInput bytes_prompt(const std::string& text) {
    PromptInput p;
    for (unsigned char c : text) p.tokens.push_back(int32_t(c) + 200);
    return p;
  }

  bool cancelled(uint64_t id) {
    std::lock_guard lock(mutex_);
    return cancel_requests_.count(id) > 0;
  }

  void run(uint64_t id, const SequenceParams& p, const SequenceCallbacks& cb,
           const std::vector<std::string>& pieces) {
    SequenceResult r;
    r.prompt_tokens = p.prompt.size();
    r.cached_prompt_tokens = 2;
    r.finish = FinishReason::Stop;
    for (size_t i = 0;; ++i) {
      std::this_thread::sleep_for(token_delay);
      if (cancelled(id)) {
        r.finish = FinishReason::Cancelled;
        ++cancelled_;
        break;
      }
      if (std::chrono::steady_clock::now() >= p.deadline) {
        r.finish = FinishReason::Cancelled;
        r.error = "timeout";
        break;
      }
      if (fail_generation) {
        r.finish = FinishReason::Cancelled;
        r.error = "decoder exploded";
        break;
      }
      if (r.generated_tokens >= p.max_new_tokens) {
        r.finish = FinishReason::Length;
        break;
      }
      TokenEvent ev;
      ++r.generated_tokens;
      if (i >= pieces.size()) {  // end of the script: the stop id
        ev.id = kTurnEnd;
        if (p.top_logprobs >= 0) ev.logprob = -0.5f;
        cb.on_token(ev);
        break;
      }
      ev.id = int32_t(1000 + i);
      ev.text = pieces[i];
      if (p.top_logprobs >= 0) {
        ev.logprob = -0.25f;
        for (int32_t k = 0; k < p.top_logprobs; ++k)
          ev.top.emplace_back(2000 + k, -1.0f - float(k));
      }
      cb.on_token(ev);
    }
    {
      std::lock_guard lock(mutex_);
      --active_;
    }
    cb.on_done(r);
  }

  BackendInfo info_;
  mutable std::mutex mutex_;
  std::vector<std::thread> threads_;
  std::map<uint64_t, bool> cancel_requests_;
  uint64_t next_id_ = 1;
  int64_t active_ = 0;
  std::atomic<int64_t> cancelled_{0};
};

}  // namespace ug::server::test
