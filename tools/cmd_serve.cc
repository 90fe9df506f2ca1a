// unigemma serve: the OpenAI-compatible HTTP API (docs/server.md) over a continuous-batching
// scheduler.
#include <pthread.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "cli_util.h"
#include "command.h"
#include "core/error.h"
#include "runtime/engine.h"
#include "server/engine_backend.h"
#include "server/http_server.h"

namespace ug::cli {
namespace {

struct ServeArgs {
  std::string model, tokenizer, dtype, load = "auto", allow_local_media;
  cli::DeviceArgs device;
  server::ServerOptions server;
  SchedulerOptions scheduler;
  int64_t max_media_mb = 32;
  double shutdown_grace_s = 30;
};

// SIGINT / SIGTERM are blocked in every thread and taken by one waiter: the first starts a graceful
// shutdown (running requests may finish for --shutdown-grace-s), a second one cancels everything at
// once.
void watch_signals(server::HttpServer& http, double grace_s, sigset_t set) {
  std::thread([&http, grace_s, set] {
    int sig = 0;
    sigwait(&set, &sig);
    std::fprintf(stderr, "serve: signal %d, shutting down (grace %.0f s; again to cancel now)\n", sig, grace_s);
    std::thread([&http, set] {
      int again = 0;
      sigwait(&set, &again);
      http.shutdown(0);
    }).detach();
    http.shutdown(grace_s);
  }).detach();
}

int serve(ServeArgs& a) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before any thread starts: all inherit it
  std::signal(SIGPIPE, SIG_IGN);

  if (!a.allow_local_media.empty()) {
    std::error_code ec;
    auto dir = std::filesystem::canonical(a.allow_local_media, ec);
    UG_CHECK(!ec && std::filesystem::is_directory(dir), "--allow-local-media {}: not a directory", a.allow_local_media);
    a.server.limits.media.local_dir = dir.string();
  }
  a.server.limits.media.max_item_bytes = a.max_media_mb << 20;
  EngineOptions opts{.weights = {.weight_dtype = parse_weight_dtype(a.dtype)},
                     .load_mode = parse_load_mode(a.load),
                     .tokenizer_path = a.tokenizer,
                     .device = a.device.spec()};
  opts.media.limits.max_file_bytes = a.server.limits.media.max_item_bytes;
  auto engine = load_engine(a.model, opts, /*require_tokenizer=*/true);
  if (!engine->template_warning.empty()) std::fprintf(stderr, "warning: %s\n", engine->template_warning.c_str());
  server::EngineBackend backend(*engine, a.scheduler);
  a.server.created =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  server::HttpServer http(backend, a.server);
  int port = http.bind();
  if (a.server.host != "127.0.0.1" && a.server.host != "localhost" && a.server.host != "::1" &&
      a.server.api_key.empty())
    std::fprintf(stderr, "warning: listening on %s without --api-key: anyone who can reach it can use it\n",
                 a.server.host.c_str());
  std::fprintf(stderr, "serve: %s as '%s' on http://%s:%d/v1 (context %lld tokens)\n", a.model.c_str(),
               a.server.model_name.c_str(), a.server.host.c_str(), port, (long long)backend.info().context_length);
  std::fflush(stderr);
  watch_signals(http, a.shutdown_grace_s, set);
  http.serve();
  backend.shutdown(/*finish_running=*/false);
  std::fprintf(stderr, "serve: stopped\n");
  return 0;
}

RegisterCommand reg("serve", "OpenAI-compatible HTTP server (docs/server.md)", [](CLI::App& sub) {
  auto a = std::make_shared<ServeArgs>();
  auto& s = a->server;
  auto& l = a->server.limits;
  sub.add_option("--model,-m", a->model, "Checkpoint folder (HF layout, with tokenizer.json)")->required();
  sub.add_option("--host", s.host, "Address to listen on (default 127.0.0.1: this machine only)");
  sub.add_option("--port", s.port, "TCP port (0 = any free port)")->check(CLI::Range(0, 65535));
  sub.add_option("--api-key", s.api_key, "Require \"Authorization: Bearer KEY\" on every route but /health")
      ->envname("UNIGEMMA_API_KEY");
  sub.add_option("--model-name", s.model_name, "Model id clients send and /v1/models lists");
  sub.add_option("--max-body-bytes", s.max_body_bytes, "Largest request body")->check(CLI::PositiveNumber);
  sub.add_option("--max-media-mb", a->max_media_mb, "Largest media item (encoded), MiB")->check(CLI::PositiveNumber);
  sub.add_option("--max-media-items", l.media.max_items, "Media items per request")->check(CLI::NonNegativeNumber);
  sub.add_option("--allow-local-media", a->allow_local_media,
                 "Let requests name local files (file:// or absolute paths) inside this directory");
  sub.add_option("--max-n", l.max_n, "Most choices (n) per request")->check(CLI::PositiveNumber);
  sub.add_option("--max-tokens", s.max_tokens_cap, "Most completion tokens a request may ask for (0 = context)")
      ->check(CLI::NonNegativeNumber);
  sub.add_option("--default-max-tokens", s.default_max_tokens,
                 "Completion tokens of a chat request without max_tokens (0 = up to the context)")
      ->check(CLI::NonNegativeNumber);
  sub.add_option("--max-context", a->scheduler.max_context, "Tokens per sequence (0 = the model's)")
      ->check(CLI::NonNegativeNumber);
  sub.add_option("--max-running", a->scheduler.max_running, "Sequences generated at once")->check(CLI::PositiveNumber);
  sub.add_option("--max-queue", a->scheduler.max_waiting, "Waiting sequences before 429")->check(CLI::PositiveNumber);
  sub.add_option("--max-step-tokens", a->scheduler.max_step_tokens, "Token budget of one batched step")
      ->check(CLI::PositiveNumber);
  sub.add_option("--kv-budget-bytes", a->scheduler.kv_budget_bytes, "KV cache memory (0 = automatic)")
      ->check(CLI::NonNegativeNumber);
  sub.add_flag("!--no-prefix-cache", a->scheduler.prefix_cache, "Disable the prefix cache");
  sub.add_option("--timeout-s", s.timeout_s, "Per-request time limit in seconds (0 = none)")
      ->check(CLI::NonNegativeNumber);
  sub.add_option("--http-threads", s.http_threads, "Connections served at once")->check(CLI::Range(2, 4096));
  sub.add_option("--shutdown-grace-s", a->shutdown_grace_s, "On SIGTERM, how long running requests may finish")
      ->check(CLI::NonNegativeNumber);
  sub.add_option("--tokenizer", a->tokenizer, "tokenizer.json (default: MODEL/tokenizer.json)");
  sub.add_option("--dtype", a->dtype, "Weight precision: f32 or bf16 (default: as stored)");
  cli::add_device_options(sub, a->device);
  sub.add_option("--load", a->load, "Weights: auto, mmap, copy");
  return [a] { return serve(*a); };
});

}  // namespace
}  // namespace ug::cli
