// Scheduler: one thread runs steps. A step = drop cancelled / expired sequences (freeing their KV), admit
// waiting requests (max_running, KV budget, prefix-cache lookup), then one Decoder::forward_batch over a decode
// token of every generating sequence plus prefill chunks in the remaining token budget, then sampling.
#include "runtime/scheduler.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "core/thread_name.h"
#include "core/thread_pool.h"
#include "runtime/engine.h"
#include "runtime/scheduler_sequence.h"

namespace ug {
namespace {

double seconds(SchedClock::time_point a, SchedClock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

int64_t automatic_budget() {
  long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return int64_t(8) << 30;
  return int64_t(pages) * int64_t(page) / 2;
}

// A prefix-cache entry whose cached tokens extend more than this beyond the reused prefix is cloned, not
// taken over: the request is another branch, not the next turn of that conversation (whose re-rendered
// reply differs from the cached tokens only near the end).
constexpr int64_t kBranchTokens = 64;

bool contains(const std::vector<uint64_t>& v, uint64_t x) { return std::find(v.begin(), v.end(), x) != v.end(); }

}  // namespace

void fill_logprobs(std::span<const float> logits, int32_t chosen, int32_t top, TokenEvent& ev) {
  float mx = -INFINITY;
  for (float v : logits) mx = std::max(mx, v);
  double sum = 0;
  for (float v : logits) sum += std::exp(double(v) - double(mx));
  const double lse = double(mx) + std::log(sum);
  ev.logprob = float(double(logits[size_t(chosen)]) - lse);
  ev.top.clear();
  if (top <= 0) return;
  // Best `top` ids: keep a small sorted list (top <= 20), ties by lower id (scanned first).
  std::vector<std::pair<int32_t, float>> best;
  for (size_t i = 0; i < logits.size(); ++i) {
    float v = logits[i];
    if (int32_t(best.size()) == top && !(v > best.back().second)) continue;
    auto at = std::find_if(best.begin(), best.end(), [&](const auto& b) { return v > b.second; });
    best.insert(at, {int32_t(i), v});
    if (int32_t(best.size()) > top) best.pop_back();
  }
  for (auto& [id, v] : best) v = float(double(v) - lse);
  ev.top = std::move(best);
}

struct Scheduler::Impl {
  Impl(Engine& e, SchedulerOptions o)
      : engine(e),
        opt(o),
        cfg(e.model->config.text),
        decoder(*e.decoder),
        tokenizer(e.tokenizer ? &*e.tokenizer : nullptr) {
    if (tokenizer) json_factory = std::make_unique<JsonConstraintFactory>(*tokenizer);
    UG_CHECK(opt.max_step_tokens > 0 && opt.max_running > 0 && opt.max_waiting >= 0 && opt.ring_slack >= 0,
             "scheduler options: max_step_tokens ({}) and max_running ({}) must be > 0, max_waiting ({}) and "
             "ring_slack ({}) >= 0",
             opt.max_step_tokens, opt.max_running, opt.max_waiting, opt.ring_slack);
    max_context =
        opt.max_context > 0 ? std::min(opt.max_context, cfg.max_position_embeddings) : cfg.max_position_embeddings;
    // Automatic: half the free host memory, or 3/4 of the free device memory (the rest for step scratch).
    const int64_t device_free = decoder.backend().free_memory_bytes();
    budget = opt.kv_budget_bytes > 0 ? opt.kv_budget_bytes
             : device_free >= 0      ? device_free / 4 * 3
                                     : automatic_budget();
    publish_stats();
    thread = std::thread([this] { loop(); });
    loop_id = thread.get_id();
  }

  Engine& engine;
  SchedulerOptions opt;
  const TextConfig& cfg;
  Decoder& decoder;
  const Tokenizer* tokenizer;
  std::unique_ptr<JsonConstraintFactory> json_factory;  // with a tokenizer
  int64_t max_context = 0;
  int64_t budget = 0;

  // Shared with the callers of submit / cancel / shutdown / stats.
  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<std::unique_ptr<Sequence>> waiting;
  std::vector<uint64_t> cancel_requests;
  bool accepting = true, stopping = false, finish_running = false;
  uint64_t next_id = 1;
  SchedulerStats published;
  std::mutex join_mu;
  std::thread thread;
  bool called_back = false;  // a callback ran in this loop iteration (scheduler thread only)
  std::thread::id loop_id;   // set once in the constructor

  // Scheduler thread only.
  std::vector<std::unique_ptr<Sequence>> running;
  PrefixCache prefix;
  SchedulerStats totals;

  uint64_t submit(SequenceParams params, SequenceCallbacks callbacks);
  void validate(const SequenceParams& p) const;
  void loop();
  void after_callbacks();  // SchedulerOptions::after_callbacks, when this iteration ran callbacks
  void drop_finished_waiting(const std::vector<uint64_t>& cancels, bool stop);
  void drop_finished_running(const std::vector<uint64_t>& cancels, bool stop, bool finish);
  void admit();
  bool try_admit(Sequence& s);
  bool make_room(size_t bytes);
  struct StepSeconds {
    double batch = 0, forward = 0, sample = 0, stream = 0;  // SchedulerStats' phases
  };
  StepSeconds step();
  // Sampling of one sequence's next token (no shared state: runs on pool threads) and what follows it.
  struct Sampled {
    TokenEvent ev;
    std::string error;  // sampling failed
  };
  static Sampled sample_next(Sequence& s);
  void on_sampled(Sequence& s, Sampled sampled);
  void finish(Sequence& s, FinishReason reason, std::string error = {});
  size_t running_bytes() const;
  void publish_stats();
};

// ---- submission -------------------------------------------------------------------------------------

void Scheduler::Impl::validate(const SequenceParams& p) const {
  const PromptInput& in = p.prompt;
  const int64_t n = in.size(), V = cfg.vocab_size;
  UG_CHECK(n > 0, "request: the prompt is empty");
  UG_CHECK(n <= max_context, "request: prompt of {} tokens does not fit the context of {} tokens", n, max_context);
  for (int64_t i = 0; i < n; ++i) {
    int32_t id = in.tokens[size_t(i)];
    UG_CHECK(id >= 0 && id < V, "request: prompt token {} at index {} is outside the vocabulary [0, {})", id, i, V);
  }
  UG_CHECK(in.block_ids.empty() || int64_t(in.block_ids.size()) == n, "request: {} block ids for {} prompt tokens",
           in.block_ids.size(), n);
  int64_t prev_end = 0;
  for (const MediaSpan& m : in.media) {
    UG_CHECK(m.position >= prev_end && m.count > 0 && m.position + m.count <= n,
             "request: media span [{}, {}) overlaps another or lies outside the prompt of {} tokens", m.position,
             m.position + m.count, n);
    prev_end = m.position + m.count;
  }
  (void)in.override_rows(0, n, cfg.hidden_size);  // checks every span's rows
  UG_CHECK(p.max_new_tokens >= 0, "request: max_new_tokens must be >= 0, got {}", p.max_new_tokens);
  UG_CHECK(p.top_logprobs >= -1 && p.top_logprobs <= 20, "request: top_logprobs must be in [0, 20], got {}",
           p.top_logprobs);
  UG_CHECK(p.stop_strings.empty() || tokenizer, "request: stop strings need a tokenizer (the engine has none)");
  UG_CHECK(!p.constraint.json || tokenizer, "request: JSON output needs a tokenizer (the engine has none)");
  const int64_t reserve = std::min(n + p.max_new_tokens, max_context);
  const size_t need = KvCache::bytes_for(cfg, opt.ring_slack, reserve, decoder.backend().kv_element_bytes());
  UG_CHECK(int64_t(need) <= budget,
           "request: {} prompt + {} new tokens need {:.1f} MiB of KV cache, more than the whole KV budget of {:.1f} "
           "MiB (lower max_tokens, shorten the prompt, or raise the KV budget)",
           n, p.max_new_tokens, double(need) / (1 << 20), double(budget) / (1 << 20));
}

uint64_t Scheduler::Impl::submit(SequenceParams params, SequenceCallbacks callbacks) {
  validate(params);
  // Sampler and StopMatcher constructors validate the sampling params and stop strings.
  auto s = std::make_unique<Sequence>(std::move(params), std::move(callbacks), int32_t(cfg.vocab_size), tokenizer);
  s->reserved_tokens = std::min(s->prompt_size() + s->params.max_new_tokens, max_context);
  if (s->params.constraint.json) s->constraint = json_factory->make(s->params.constraint, s->params.stop_ids);
  s->submitted = SchedClock::now();
  std::lock_guard lk(mu);
  UG_CHECK(accepting, "scheduler: shutting down, no new requests");
  if (int64_t(waiting.size()) >= opt.max_waiting)
    throw QueueFull(fmt::format("scheduler: {} requests are already waiting (max_waiting)", waiting.size()));
  s->id = next_id++;
  uint64_t id = s->id;
  waiting.push_back(std::move(s));
  published.waiting = int64_t(waiting.size());
  cv.notify_all();
  return id;
}

// ---- the loop ---------------------------------------------------------------------------------------

void Scheduler::Impl::loop() {
  name_current_thread("ug-scheduler");
  for (;;) {
    std::vector<uint64_t> cancels;
    bool stop = false, finish = false;
    {
      std::unique_lock lk(mu);
      if (running.empty())
        cv.wait_for(lk, std::chrono::milliseconds(50),
                    [&] { return stopping || !cancel_requests.empty() || !waiting.empty(); });
      cancels.swap(cancel_requests);
      stop = stopping;
      finish = finish_running;
    }
    drop_finished_waiting(cancels, stop);
    const auto began = SchedClock::now();
    drop_finished_running(cancels, stop, finish);
    if (stop && running.empty()) break;
    if (!stop) admit();
    if (!running.empty()) {
      const auto admitted = SchedClock::now();
      const StepSeconds t = step();
      // All at once: a snapshot never has more forward time than step time.
      totals.admit_seconds += seconds(began, admitted);
      totals.batch_seconds += t.batch;
      totals.forward_seconds += t.forward;
      totals.sample_seconds += t.sample;
      totals.stream_seconds += t.stream;
      totals.step_seconds += seconds(began, SchedClock::now());
    }
    publish_stats();
    after_callbacks();
  }
  publish_stats();
  after_callbacks();
}

void Scheduler::Impl::after_callbacks() {
  if (!called_back) return;
  called_back = false;
  if (opt.after_callbacks) opt.after_callbacks();
}

void Scheduler::Impl::drop_finished_waiting(const std::vector<uint64_t>& cancels, bool stop) {
  std::vector<std::unique_ptr<Sequence>> dropped;
  const auto now = SchedClock::now();
  {
    std::lock_guard lk(mu);
    for (auto it = waiting.begin(); it != waiting.end();) {
      const Sequence& s = **it;
      if (stop || contains(cancels, s.id) || now >= s.params.deadline) {
        dropped.push_back(std::move(*it));
        it = waiting.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& s : dropped) {
    std::string error = stop ? "scheduler shut down" : contains(cancels, s->id) ? "" : "timeout";
    finish(*s, FinishReason::Cancelled, error);
  }
}

void Scheduler::Impl::drop_finished_running(const std::vector<uint64_t>& cancels, bool stop, bool finish_rest) {
  const auto now = SchedClock::now();
  for (auto& s : running) {
    if (contains(cancels, s->id)) {
      finish(*s, FinishReason::Cancelled);
    } else if (now >= s->params.deadline) {
      finish(*s, FinishReason::Cancelled, "timeout");
    } else if (stop && !finish_rest) {
      finish(*s, FinishReason::Cancelled, "scheduler shut down");
    }
  }
  std::erase_if(running, [](const auto& s) { return s->done; });
}

// ---- admission --------------------------------------------------------------------------------------

void Scheduler::Impl::admit() {
  while (int64_t(running.size()) < opt.max_running) {
    std::unique_ptr<Sequence> s;
    {
      std::lock_guard lk(mu);
      if (waiting.empty()) return;
      s = std::move(waiting.front());
      waiting.pop_front();
    }
    if (!try_admit(*s)) {  // waits for KV memory (FIFO: nothing overtakes it)
      std::lock_guard lk(mu);
      waiting.push_front(std::move(s));
      return;
    }
    running.push_back(std::move(s));
  }
}

size_t Scheduler::Impl::running_bytes() const {
  size_t b = 0;
  for (const auto& s : running)
    if (s->cache) b += s->cache->bytes();
  return b;
}

// Evicts least recently used prefix-cache entries until `bytes` more fit the budget.
bool Scheduler::Impl::make_room(size_t bytes) {
  const size_t used = running_bytes();
  while (used + prefix.bytes() + bytes > size_t(budget))
    if (!prefix.evict_lru()) return false;
  return true;
}

// Starts a sequence from the best cached prefix: a prefix-cache entry (taken over) or a running sequence
// sharing the prompt's beginning (cloned), else an empty cache.
bool Scheduler::Impl::try_admit(Sequence& s) {
  const KeyedTokens prompt = s.view();
  int64_t p = 0;
  PrefixCache::Match entry;
  const Sequence* donor = nullptr;
  if (opt.prefix_cache) {
    entry = prefix.find(prompt);
    p = entry.tokens;
    for (const auto& r : running) {
      int64_t q = usable_prefix(prompt, r->view(), *r->cache);
      if (q > p) {
        p = q;
        donor = r.get();
      }
    }
  }
  std::unique_ptr<KvCache> cache;
  if (p > 0 && !donor && entry.entry->cache->size() - p > kBranchTokens) {
    // Another branch of a conversation (sharing only a beginning, e.g. the system prompt): clone, so that
    // the entry still serves its own continuation. (make_room may evict it if memory is short.)
    cache = std::make_unique<KvCache>(*entry.entry->cache);
    cache->truncate(p);
    cache->reserve(s.reserved_tokens);
    if (!make_room(cache->bytes())) cache.reset();
  } else if (p > 0 && !donor) {
    // The continuation of the cached conversation (minus a re-rendered tail): take it over.
    cache = prefix.take(entry.entry);
    cache->reserve(s.reserved_tokens);
    if (!make_room(cache->bytes())) cache.reset();  // dropped: a cold start may still fit
  } else if (p > 0) {
    cache = std::make_unique<KvCache>(*donor->cache);
    cache->truncate(p);
    cache->reserve(s.reserved_tokens);
    if (!make_room(cache->bytes())) cache.reset();
  }
  if (cache) {
    cache->truncate(p);
  } else {
    p = 0;
    if (!make_room(KvCache::bytes_for(cfg, opt.ring_slack, s.reserved_tokens, decoder.backend().kv_element_bytes())))
      return false;
    cache = std::make_unique<KvCache>(decoder.new_cache(opt.ring_slack));
    cache->reserve(s.reserved_tokens);
  }
  s.cache = std::move(cache);
  // The backend's argmax or top-k candidates need no host row (1 MB per sequence with the real vocabulary).
  if (!s.device_greedy() && !s.device_top_k()) s.logits.assign(size_t(cfg.vocab_size), 0.0f);
  s.admitted = SchedClock::now();
  s.result.cached_prompt_tokens = p;
  totals.prompt_tokens_total += s.prompt_size();
  totals.prompt_tokens_cached += p;
  return true;
}

// ---- one step ---------------------------------------------------------------------------------------

Scheduler::Impl::StepSeconds Scheduler::Impl::step() {
  const auto began = SchedClock::now();
  int64_t left = opt.max_step_tokens;
  std::vector<BatchItem> items;
  std::vector<Sequence*> owners;
  std::deque<std::vector<const float*>> overrides;  // deque: spans into it stay valid
  for (auto& s : running) {                         // decode tokens first
    if (s->prefilling()) continue;
    items.push_back({.input = {.token_ids = std::span(s->tokens).subspan(size_t(s->cache->size()), 1)},
                     .cache = s->cache.get(),
                     .mode = LogitsMode::Last});
    s->want_next_token(items.back());
    owners.push_back(s.get());
    --left;
  }
  // Then prefill chunks in admission order. Prefill always gets some tokens (so that many decoding
  // sequences cannot starve a new one), and the first chunk of a step may exceed the budget to take a
  // whole bidirectional block that would not fit otherwise.
  left = std::max(left, std::min<int64_t>(opt.max_step_tokens, 64));
  bool first_chunk = true;
  for (auto& s : running) {
    if (!s->prefilling() || left <= 0) continue;
    const PromptInput& pr = s->params.prompt;
    const int64_t begin = s->cache->size(), n = s->prompt_size();
    int64_t end = std::min(n, begin + left);
    while (end > begin && !is_chunk_boundary(pr.block_ids, end)) --end;  // never split a block
    if (end == begin) {
      if (!first_chunk) continue;  // the block waits for a step with room
      end = std::min(n, begin + left);
      while (!is_chunk_boundary(pr.block_ids, end)) ++end;
    }
    first_chunk = false;
    const size_t b = size_t(begin), len = size_t(end - begin);
    overrides.push_back(pr.media.empty() ? std::vector<const float*>{} : pr.override_rows(begin, end, cfg.hidden_size));
    items.push_back({.input = {.token_ids = std::span(s->tokens).subspan(b, len),
                               .embeddings_override = overrides.back(),
                               .block_ids = pr.block_ids.empty() ? std::span<const int32_t>{}
                                                                 : std::span(pr.block_ids).subspan(b, len)},
                     .cache = s->cache.get(),
                     .mode = end == n ? LogitsMode::Last : LogitsMode::None});
    if (end == n) s->want_next_token(items.back());
    owners.push_back(s.get());
    left -= end - begin;
  }
  const auto forward_began = SchedClock::now();
  try {
    decoder.forward_batch(items);
  } catch (const std::exception& e) {
    for (Sequence* s : owners) finish(*s, FinishReason::Cancelled, std::string("forward failed: ") + e.what());
  }
  const auto forward_ended = SchedClock::now();
  ++totals.steps;
  // Sampling (softmax / top-k / top-p over 262k logits: ~1 ms a sequence) runs on the pool across sequences; each
  // has its own sampler state, so results do not depend on the threads. Constrained sequences stay on this thread
  // (their grammars may share mask caches), and so do those whose choice came from the backend (an argmax, or a
  // draw from its top-k candidates: microseconds, less than waking the pool); streaming and finishing stay in
  // order.
  std::vector<Sequence*> ready;
  for (size_t i = 0; i < items.size(); ++i)
    if (items[i].mode == LogitsMode::Last && !owners[i]->done) ready.push_back(owners[i]);
  std::vector<Sampled> sampled(ready.size());
  std::vector<int64_t> parallel;
  for (size_t j = 0; j < ready.size(); ++j) {
    const bool due = int64_t(ready[j]->generated.size()) < ready[j]->params.max_new_tokens;
    if (!due) continue;
    const Sequence& s = *ready[j];
    if (s.constraint || s.device_greedy() || (s.device_top_k() && s.top.full.empty()))
      sampled[j] = sample_next(*ready[j]);
    else
      parallel.push_back(int64_t(j));
  }
  ThreadPool::global().run(int64_t(parallel.size()), [&](int64_t t) {  // one task runs inline
    sampled[size_t(parallel[size_t(t)])] = sample_next(*ready[size_t(parallel[size_t(t)])]);
  });
  const auto sampled_at = SchedClock::now();
  for (size_t j = 0; j < ready.size(); ++j) on_sampled(*ready[j], std::move(sampled[j]));
  after_callbacks();  // the tokens go out before the bookkeeping below
  std::erase_if(running, [](const auto& s) { return s->done; });
  return {.batch = seconds(began, forward_began),
          .forward = seconds(forward_began, forward_ended),
          .sample = seconds(forward_ended, sampled_at),
          .stream = seconds(sampled_at, SchedClock::now())};
}

// Samples the next token from s.logits (touches only s).
Scheduler::Impl::Sampled Scheduler::Impl::sample_next(Sequence& s) {
  const SequenceParams& p = s.params;
  Sampled out;
  if (s.device_greedy()) {
    if (s.argmax < 0) out.error = "sampling failed: the logits hold NaN or +inf";
    out.ev.id = s.argmax;
    return out;
  }
  try {
    if (s.device_top_k()) {
      out.ev.id = s.sampler.sample_top(s.top);
      return out;
    }
    std::vector<float> raw;
    if (p.top_logprobs >= 0) raw = s.logits;  // the sampler modifies its input in place
    if (s.constraint) s.constraint->mask_logits(s.logits);
    out.ev.id = s.sampler.sample(s.logits, p.prompt.tokens, s.generated);
    if (s.constraint) s.constraint->accept(out.ev.id);
    if (p.top_logprobs >= 0) fill_logprobs(raw, out.ev.id, p.top_logprobs, out.ev);
  } catch (const std::exception& e) {
    out.error = std::string("sampling failed: ") + e.what();
  }
  return out;
}

// Streams the sampled token and decides whether the sequence ends.
void Scheduler::Impl::on_sampled(Sequence& s, Sampled sampled) {
  const SequenceParams& p = s.params;
  if (int64_t(s.generated.size()) >= p.max_new_tokens) return finish(s, FinishReason::Length);
  if (!sampled.error.empty()) return finish(s, FinishReason::Cancelled, std::move(sampled.error));
  TokenEvent ev = std::move(sampled.ev);
  if (s.generated.empty()) s.first_token = SchedClock::now();
  s.generated.push_back(ev.id);
  s.tokens.push_back(ev.id);
  s.keys.push_back(uint64_t(ev.id));
  ++totals.generated_tokens_total;
  const bool stop_id = std::find(p.stop_ids.begin(), p.stop_ids.end(), ev.id) != p.stop_ids.end();
  bool stop_string = false;
  if (!stop_id && s.detok) {
    auto r = s.stops.push(s.detok->push(ev.id));
    ev.text = std::move(r.emit);
    stop_string = r.stopped;
  }
  called_back = true;
  try {
    if (s.callbacks.on_token) s.callbacks.on_token(ev);
  } catch (const std::exception& e) {
    return finish(s, FinishReason::Cancelled, std::string("on_token failed: ") + e.what());
  }
  if (stop_id) return finish(s, FinishReason::Stop);
  if (stop_string) return finish(s, FinishReason::StopString);
  if (int64_t(s.generated.size()) >= p.max_new_tokens) return finish(s, FinishReason::Length);
  if (s.cache->size() >= max_context) return finish(s, FinishReason::ContextFull);
}

// Ends a sequence exactly once: releases its KV (into the prefix cache when it ended normally) and calls
// on_done.
void Scheduler::Impl::finish(Sequence& s, FinishReason reason, std::string error) {
  if (s.done) return;
  s.done = true;
  SequenceResult& r = s.result;
  r.finish = reason;
  r.error = std::move(error);
  if (s.detok && reason != FinishReason::StopString) {
    r.tail_text = s.stops.push(s.detok->flush()).emit;
    r.tail_text += s.stops.flush();
  }
  const auto now = SchedClock::now();
  const bool admitted = s.admitted != SchedClock::time_point{};
  r.prompt_tokens = s.prompt_size();
  r.generated_tokens = int64_t(s.generated.size());
  r.queue_seconds = seconds(s.submitted, admitted ? s.admitted : now);
  r.ttft_seconds = s.generated.empty() ? 0.0 : seconds(s.submitted, s.first_token);
  r.total_seconds = seconds(s.submitted, now);
  if (s.cache) {
    const bool keep = opt.prefix_cache && reason != FinishReason::Cancelled && s.cache->size() > 0;
    if (keep) {
      const size_t n = size_t(s.cache->size());
      std::vector<uint64_t> keys(s.keys.begin(), s.keys.begin() + int64_t(n));
      std::vector<int32_t> blocks = s.params.prompt.block_ids;
      prefix.insert(std::move(keys), std::move(blocks), std::move(s.cache));
    }
    s.cache.reset();
  }
  publish_stats();
  called_back = true;
  try {
    if (s.callbacks.on_done) s.callbacks.on_done(r);
  } catch (...) {  // nothing left to tell the caller
  }
}

void Scheduler::Impl::publish_stats() {
  SchedulerStats st = totals;
  for (const auto& s : running) st.running += s->done ? 0 : 1;
  st.kv_bytes_sequences = int64_t(running_bytes());
  st.kv_bytes_prefix_cache = int64_t(prefix.bytes());
  st.kv_bytes_used = st.kv_bytes_sequences + st.kv_bytes_prefix_cache;
  st.kv_bytes_budget = budget;
  st.prefix_cache_entries = prefix.size();
  std::lock_guard lk(mu);
  st.waiting = int64_t(waiting.size());
  published = st;
}

// ---- public API -------------------------------------------------------------------------------------

Scheduler::Scheduler(Engine& engine, SchedulerOptions options) : impl_(std::make_unique<Impl>(engine, options)) {}

Scheduler::~Scheduler() { shutdown(false); }  // must not run on the scheduler thread (a callback)

uint64_t Scheduler::submit(SequenceParams params, SequenceCallbacks callbacks) {
  return impl_->submit(std::move(params), std::move(callbacks));
}

void Scheduler::cancel(uint64_t id) {
  std::lock_guard lk(impl_->mu);
  impl_->cancel_requests.push_back(id);
  impl_->cv.notify_all();
}

void Scheduler::shutdown(bool finish_running) {
  {
    std::lock_guard lk(impl_->mu);
    impl_->accepting = false;
    if (!impl_->stopping) impl_->finish_running = finish_running;
    if (!finish_running) impl_->finish_running = false;  // a later "cancel now" overrides "finish"
    impl_->stopping = true;
    impl_->cv.notify_all();
  }
  // From a callback (the scheduler thread itself) this only requests the stop; the destructor joins.
  if (std::this_thread::get_id() == impl_->loop_id) return;
  std::lock_guard join(impl_->join_mu);
  if (impl_->thread.joinable()) impl_->thread.join();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard lk(impl_->mu);
  return impl_->published;
}

const Engine& Scheduler::engine() const { return impl_->engine; }

}  // namespace ug
