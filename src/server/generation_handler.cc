#include "server/generation_handler.h"

#include <fmt/format.h>

#include <chrono>
#include <random>

#include "core/error.h"
#include "server/api_error.h"
#include "server/chat_assembler.h"
#include "server/connection_watch.h"
#include "server/sequence_group.h"
#include "server/sse.h"
#include "server/text_assembler.h"

namespace ug::server {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// Registers a request's sequences for graceful shutdown for as long as the request lives.
struct GenerationHandler::Tracked {
  Tracked(GenerationHandler& h, std::shared_ptr<SequenceGroup> g)
      : handler(h), group(std::move(g)) {
    ++handler.in_flight_;  // a stream stays in flight after its handler has returned
    std::lock_guard lock(handler.mutex_);
    handler.groups_.insert(group.get());
  }
  ~Tracked() {
    std::lock_guard lock(handler.mutex_);
    handler.groups_.erase(group.get());
    --handler.in_flight_;
  }
  GenerationHandler& handler;
  std::shared_ptr<SequenceGroup> group;
};

namespace {

struct InFlight {
  explicit InFlight(std::atomic<int64_t>& n) : n_(n) { ++n_; }
  ~InFlight() { --n_; }
  std::atomic<int64_t>& n_;
};

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Runs `fn`, turning a ug::Error (input the engine cannot take) into a 400.
template <typename Fn>
auto user_input(const char* code, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const QueueFull&) {
    throw;
  } catch (const Error& e) {
    throw ApiError(400, e.what(), "", code);
  }
}

}  // namespace

void GenerationHandler::cancel_all() {
  std::lock_guard lock(mutex_);
  for (SequenceGroup* g : groups_) g->cancel_all();
}

void GenerationHandler::check_model(const std::string& model) const {
  if (model != options_.model_name)
    throw ApiError(404,
                   fmt::format("The model '{}' does not exist (this server serves '{}')", model,
                               options_.model_name),
                   "model", "model_not_found");
}

std::vector<SequenceParams> GenerationHandler::sequence_params(const GenerationOptions& gen,
                                                               const PromptInput& prompt,
                                                               Clock::time_point arrival) const {
  const BackendInfo& info = backend_.info();
  const int64_t n_prompt = prompt.size();
  const int64_t context = info.context_length;
  if (n_prompt >= context)
    throw ApiError(
        400,
        fmt::format(
            "This model's maximum context length is {} tokens, but the prompt has {} tokens",
            context, n_prompt),
        "messages", "context_length_exceeded");
  int64_t max_new = context - n_prompt;
  if (options_.max_tokens_cap > 0) max_new = std::min(max_new, options_.max_tokens_cap);
  if (options_.default_max_tokens > 0) max_new = std::min(max_new, options_.default_max_tokens);
  if (gen.max_tokens) {
    if (options_.max_tokens_cap > 0 && *gen.max_tokens > options_.max_tokens_cap)
      throw ApiError(400,
                     fmt::format("max_tokens: at most {} on this server, got {}",
                                 options_.max_tokens_cap, *gen.max_tokens),
                     "max_tokens", "invalid_value");
    if (n_prompt + *gen.max_tokens > context)
      throw ApiError(
          400,
          fmt::format(
              "This model's maximum context length is {} tokens; the prompt has {} tokens and "
              "max_tokens asks for {} more",
              context, n_prompt, *gen.max_tokens),
          "max_tokens", "context_length_exceeded");
    max_new = *gen.max_tokens;
  }
  SamplingParams s = info.default_sampling;
  if (gen.temperature) s.temperature = float(*gen.temperature);
  if (gen.top_p) s.top_p = float(*gen.top_p);
  if (gen.top_p && *gen.top_p == 0) {  // OpenAI allows 0: only the most likely token
    s.top_p = 1;
    s.temperature = 0;
  }
  if (gen.top_k) s.top_k = int32_t(*gen.top_k);
  if (gen.min_p) s.min_p = float(*gen.min_p);
  if (gen.presence_penalty) s.presence_penalty = float(*gen.presence_penalty);
  if (gen.frequency_penalty) s.frequency_penalty = float(*gen.frequency_penalty);
  if (gen.repetition_penalty) s.repetition_penalty = float(*gen.repetition_penalty);
  user_input("invalid_value", [&] { s.validate(); });
  SequenceParams base;
  base.prompt = prompt;
  base.sampling = s;
  base.max_new_tokens = max_new;
  base.stop_ids = info.stop_ids;
  base.stop_strings = gen.stop;
  base.top_logprobs = gen.top_logprobs;
  base.constraint.json = gen.json;
  if (options_.timeout_s > 0)
    base.deadline = arrival + std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(options_.timeout_s));
  std::vector<SequenceParams> out;
  thread_local std::mt19937_64 rng(std::random_device{}());
  for (int64_t i = 0; i < gen.n; ++i) {
    SequenceParams p = base;
    // Seeded requests are reproducible; choice i uses seed + i so that n > 1 gives different
    // samples.
    p.sampling.seed = gen.seed ? *gen.seed + uint64_t(i) : rng();
    out.push_back(std::move(p));
  }
  return out;
}

void GenerationHandler::submit(SequenceGroup& group, std::vector<SequenceParams> params) {
  try {
    user_input("invalid_request", [&] { group.submit_all(std::move(params)); });
  } catch (const QueueFull& e) {
    ApiError err(429, "The server is busy (request queue full); retry shortly", "", "queue_full");
    err.retry_after_s = 1;
    throw err;
  }
}

void GenerationHandler::chat(const httplib::Request& req, httplib::Response& res) {
  const auto arrival = Clock::now();
  InFlight in_flight(in_flight_);
  ChatRequest cr = parse_chat_request(parse_body(req.body), options_.limits);
  check_model(cr.model);
  ChatTemplateOptions topt{
      .add_generation_prompt = true, .enable_thinking = cr.enable_thinking, .tools = cr.tools};
  PromptInput prompt = user_input("invalid_prompt", [&] {
    return backend_.chat_prompt(cr.messages, topt, cr.forced_prefix, cr.media);
  });
  cr.media.clear();  // encoded bytes are no longer needed
  auto group = std::make_shared<SequenceGroup>(backend_);
  std::vector<SequenceParams> params = sequence_params(cr.gen, prompt, arrival);
  for (SequenceParams& p : params) {  // the JSON may follow a thought channel, or give way to tools
    p.constraint.allow_thought = cr.enable_thinking;
    p.constraint.allow_tool_calls = cr.parse_tool_calls && cr.forced_prefix.empty();
  }
  submit(*group, std::move(params));
  ChatAssembler::Options o{.stream = cr.gen.stream,
                           .include_usage = cr.gen.include_usage,
                           .logprobs = cr.gen.top_logprobs >= 0,
                           .parse_tool_calls = cr.parse_tool_calls,
                           .forced_prefix = cr.forced_prefix};
  auto assembler = std::make_shared<ChatAssembler>(
      backend_, &metrics_,
      ResponseContext{new_response_id("chatcmpl-"), unix_now(), options_.model_name},
      size_t(cr.gen.n), o, arrival);
  respond(req, res, std::move(group), std::move(assembler), cr.gen.stream);
}

void GenerationHandler::completion(const httplib::Request& req, httplib::Response& res) {
  const auto arrival = Clock::now();
  InFlight in_flight(in_flight_);
  CompletionRequest cr = parse_completion_request(parse_body(req.body), options_.limits);
  check_model(cr.model);
  std::vector<SequenceParams> params;
  std::vector<std::string> echo;
  for (const CompletionPrompt& p : cr.prompts) {
    PromptInput prompt = user_input("invalid_prompt", [&] { return backend_.text_prompt(p); });
    for (auto& sp : sequence_params(cr.gen, prompt, arrival)) params.push_back(std::move(sp));
    std::string text = p.text;
    if (p.text.empty())
      for (int32_t id : p.ids) text += backend_.token_text(id);
    for (int64_t j = 0; j < cr.gen.n; ++j) echo.push_back(cr.echo ? text : "");
  }
  auto group = std::make_shared<SequenceGroup>(backend_);
  submit(*group, std::move(params));
  TextAssembler::Options o{.stream = cr.gen.stream,
                           .include_usage = cr.gen.include_usage,
                           .logprobs = cr.gen.top_logprobs >= 0,
                           .n = cr.gen.n};
  auto assembler = std::make_shared<TextAssembler>(
      backend_, &metrics_,
      ResponseContext{new_response_id("cmpl-"), unix_now(), options_.model_name}, std::move(echo),
      o, arrival);
  respond(req, res, std::move(group), std::move(assembler), cr.gen.stream);
}

void GenerationHandler::respond(const httplib::Request& req, httplib::Response& res,
                                std::shared_ptr<SequenceGroup> group,
                                std::shared_ptr<ResponseAssembler> assembler, bool stream) {
  auto tracked = std::make_shared<Tracked>(*this, group);
  auto watch = std::make_shared<ConnectionWatch>(req.remote_addr, req.remote_port, req.local_port);
  if (!stream) {
    while (!group->all_done()) {
      assembler->consume(group->wait(std::chrono::milliseconds(100)));
      if (watch->closed()) {  // nobody is waiting for the answer any more
        group->cancel_all();
        res.status = 499;
        return;
      }
    }
    if (const auto& err = assembler->error()) throw *err;
    const Usage u = assembler->usage();
    metrics_.tokens(u.prompt_tokens, u.cached_tokens, u.completion_tokens);
    res.set_content(dump_json(assembler->response()), "application/json");
    return;
  }
  // Streaming: the provider runs on this connection's thread after the handler returns, and owns
  // the request's state. A failed write or a hang-up cancels the sequences.
  metrics_.stream_started();
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  auto last_write = std::make_shared<Clock::time_point>(Clock::now());
  const double keepalive_s = options_.keepalive_s;
  Metrics* metrics = &metrics_;
  res.set_chunked_content_provider(
      "text/event-stream",
      [group, assembler, tracked, watch, last_write, keepalive_s, metrics](
          size_t, httplib::DataSink& sink) {
        if (watch->closed()) {
          group->cancel_all();
          return false;
        }
        std::string out;
        for (const json& chunk : assembler->consume(group->wait(std::chrono::milliseconds(100))))
          out += sse_event(chunk);
        const bool done = group->all_done();
        if (done) {
          if (const auto& err = assembler->error()) {
            out += sse_event(error_body(*err));
          } else {
            for (const json& chunk : assembler->stream_tail()) out += sse_event(chunk);
            const Usage u = assembler->usage();
            metrics->tokens(u.prompt_tokens, u.cached_tokens, u.completion_tokens);
          }
          out += sse_done();
        } else if (out.empty() &&
                   std::chrono::duration<double>(Clock::now() - *last_write).count() >=
                       keepalive_s) {
          out = sse_keepalive();
        }
        if (!out.empty()) {
          if (!sink.write(out.data(), out.size())) {
            group->cancel_all();
            return false;
          }
          *last_write = Clock::now();
        }
        if (done) sink.done();
        return true;
      },
      [metrics, group](bool) {
        group->cancel_all();
        metrics->stream_ended();
      });
}

}  // namespace ug::server
