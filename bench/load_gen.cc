// load_gen: drives a running `unigemma serve` (or any OpenAI-compatible server) with N concurrent
// streaming chat clients per level and reports, per level, requests/s, aggregate output tok/s, time
// to first token, inter-token latency (gaps between SSE chunk arrivals), end-to-end latency and
// errors (any non-200 answer or malformed stream), as a table and as JSON. Token counts come from
// the usage chunk (stream_options.include_usage). Commands and results: docs/server.md,
// docs/perf.md "Server".
//
//   build/load/bench/load_gen --url http://127.0.0.1:9379 --concurrency 1,8,32,64
//       --prompt-tokens 128 --max-tokens 64 --json-out /tmp/load.json
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <random>
#include <regex>
#include <stdexcept>
#include <thread>

#include "load/http_driver.h"
#include "load/level_report.h"
#include "load/workload.h"

namespace ug::load {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct Args {
  std::string url = "http://127.0.0.1:9379", json_out;
  std::vector<int64_t> concurrency = {1, 8, 32, 64};
  int64_t requests = 0;   // per level; 0 = max(8, 4 x concurrency)
  double duration_s = 0;  // per level; > 0 replaces --requests
  int64_t prompt_tokens = 0, warmup = 2;
  double reference_tok_s = 0;
  bool quiet = false;
  Target target;
  WorkloadOptions work;
};

[[noreturn]] void fail(const std::string& msg) { throw std::runtime_error(msg); }

void parse_url(const std::string& url, Target& t) {
  static const std::regex re(R"(^http://([^:/]+|\[[^\]]+\])(?::(\d+))?/?$)");
  std::smatch m;
  if (!std::regex_match(url, m, re))
    fail(fmt::format("--url {}: expected http://HOST[:PORT] (https is not supported)", url));
  t.host = m[1].str();
  if (t.host.front() == '[') t.host = t.host.substr(1, t.host.size() - 2);
  t.port = m[2].matched ? std::stoi(m[2].str()) : 80;
}

// usage.prompt_tokens of a one-token request whose user message has `words` words.
int64_t prompt_tokens_for(const Args& a, int64_t words) {
  WorkloadOptions o = a.work;
  o.prompt_words = words;
  o.cancel_fraction = o.bad_fraction = 0;
  o.turns = 1;
  Workload w(o, 999999);
  RequestPlan p = w.next();
  json body = json::parse(p.body);
  body["max_tokens"] = 1;
  p.body = body.dump();
  RequestResult r = HttpDriver(a.target).run(p);
  if (r.outcome != Outcome::Ok) fail("calibration request failed: " + r.error);
  return r.prompt_tokens;
}

// Finds the user-message length in words that makes usage.prompt_tokens about `target` (template
// and shared prefix included): tokens per word measured from two probes, then checked.
void calibrate_prompt(Args& a) {
  const int64_t base_words = 8, span = 256;
  const int64_t t0 = prompt_tokens_for(a, base_words);
  const int64_t t1 = prompt_tokens_for(a, base_words + span);
  const double per_word = double(t1 - t0) / double(span);
  if (per_word <= 0) fail("calibration: prompt tokens do not grow with words");
  const int64_t words = base_words + std::llround(double(a.prompt_tokens - t0) / per_word);
  if (words < 1)
    fail(fmt::format("--prompt-tokens {} is below the chat template + shared prefix ({} tokens)",
                     a.prompt_tokens, t0 - int64_t(std::lround(base_words * per_word))));
  a.work.prompt_words = words;
  std::fprintf(stderr,
               "calibrated: %lld words per user message = %lld prompt tokens (%.2f tok/word)\n",
               (long long)words, (long long)prompt_tokens_for(a, words), per_word);
}

struct LevelRun {
  std::vector<RequestResult> results;
  double wall_s = 0;
  std::string aborted;  // non-empty: the server stopped answering
};

LevelRun run_level(const Args& a, int64_t concurrency, int64_t total, double duration_s,
                   uint64_t level) {
  LevelRun run;
  std::mutex mu;
  std::atomic<int64_t> issued{0};
  std::atomic<bool> abort{false};
  const auto t0 = Clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  std::vector<std::thread> clients;
  for (int64_t c = 0; c < concurrency; ++c)
    clients.emplace_back([&, c] {
      Workload work(a.work, level * 100000 + uint64_t(c));
      HttpDriver driver(a.target);
      int unreachable = 0;
      while (!abort) {
        if (duration_s > 0 ? elapsed() >= duration_s : issued.fetch_add(1) >= total) break;
        const RequestPlan plan = work.next();
        const double start = elapsed();
        RequestResult r = driver.run(plan);
        r.start_s = start;
        work.done(r);
        unreachable = r.status == 0 && r.outcome == Outcome::Error ? unreachable + 1 : 0;
        std::lock_guard lock(mu);
        if (unreachable >= 5 && !abort) {
          abort = true;
          run.aborted = "the server stopped answering: " + r.error;
        }
        run.results.push_back(std::move(r));
      }
    });
  for (auto& t : clients) t.join();
  run.wall_s = elapsed();
  return run;
}

int run(Args& a) {
  parse_url(a.url, a.target);
  if (a.work.seed == 0)
    a.work.seed = std::random_device{}() | 1;  // fresh prompts: no stale cache hits
  if (auto err = probe(a.target, "/health"); !err.empty())
    fail(err + " (is `unigemma serve` running there? see --url)");
  if (a.work.model.empty()) {
    std::string body;
    if (auto err = probe(a.target, "/v1/models", &body); !err.empty()) fail(err);
    auto j = json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.contains("data") || j["data"].empty())
      fail("GET /v1/models: no model listed; pass --model");
    a.work.model = j["data"][0].value("id", "");
  }
  if (a.prompt_tokens > 0) calibrate_prompt(a);
  if (a.warmup > 0) {
    WorkloadOptions plain = a.work;
    plain.cancel_fraction = plain.bad_fraction = 0;
    Args w = a;
    w.work = plain;
    LevelRun warm = run_level(w, 1, a.warmup, 0, 99);
    for (const auto& r : warm.results)
      if (r.outcome != Outcome::Ok) fail("warm-up request failed: " + r.error);
  }

  std::fputs(table_header().c_str(), stdout);
  json levels = json::array();
  int64_t errors = 0;
  std::vector<LevelSummary> summaries;
  for (size_t i = 0; i < a.concurrency.size(); ++i) {
    const int64_t c = a.concurrency[i];
    const int64_t total = a.requests > 0 ? a.requests : std::max<int64_t>(8, 4 * c);
    if (!a.quiet)
      std::fprintf(stderr, "level %zu: concurrency %lld, %s\n", i + 1, (long long)c,
                   a.duration_s > 0 ? fmt::format("{} s", a.duration_s).c_str()
                                    : fmt::format("{} requests", total).c_str());
    LevelRun run = run_level(a, c, total, a.duration_s, i);
    LevelSummary s = summarize(c, run.results, run.wall_s);
    std::fputs(table_row(s).c_str(), stdout);
    std::fflush(stdout);
    for (const auto& e : s.error_samples) std::fprintf(stdout, "      error: %s\n", e.c_str());
    errors += s.errors;
    json lj = to_json(s);
    if (!run.aborted.empty()) lj["aborted"] = run.aborted;
    levels.push_back(lj);
    summaries.push_back(s);
    if (!run.aborted.empty()) {
      std::fprintf(stderr, "error: load_gen: %s\n", run.aborted.c_str());
      errors = std::max<int64_t>(errors, 1);
      break;
    }
  }
  json out = {{"url", a.url},
              {"model", a.work.model},
              {"seed", a.work.seed},
              {"prompt_words", a.work.prompt_words},
              {"prefix_words", a.work.prefix_words},
              {"turns", a.work.turns},
              {"max_tokens", a.work.max_tokens},
              {"cancel_fraction", a.work.cancel_fraction},
              {"bad_fraction", a.work.bad_fraction},
              {"levels", levels}};
  if (a.reference_tok_s > 0) {
    // Server overhead against a single-stream ceiling (e.g. `unigemma bench` tg t/s of the model).
    out["reference_tok_s"] = a.reference_tok_s;
    for (const LevelSummary& s : summaries)
      if (s.concurrency == 1 && s.stream_tokens_per_s > 0) {
        const double overhead = 1 - s.stream_tokens_per_s / a.reference_tok_s;
        out["overhead_at_concurrency_1"] = overhead;
        std::printf(
            "concurrency 1: %.1f tok/s per stream vs reference %.1f tok/s: overhead %.1f%%\n",
            s.stream_tokens_per_s, a.reference_tok_s, 100 * overhead);
      }
  }
  if (!a.json_out.empty()) {
    std::ofstream f(a.json_out);
    if (!(f << out.dump(2) << "\n")) fail("--json-out " + a.json_out + ": cannot write");
  }
  return errors > 0 ? 1 : 0;
}

}  // namespace
}  // namespace ug::load

int main(int argc, char** argv) {
  ug::load::Args a;
  a.work.model.clear();
  a.work.seed = 0;  // random unless --seed
  if (const char* key = std::getenv("UNIGEMMA_API_KEY")) a.target.api_key = key;
  CLI::App app{"Load generator for an OpenAI-compatible chat server (streaming)", "load_gen"};
  app.add_option("--url", a.url, "Server root (http://HOST:PORT)")->capture_default_str();
  app.add_option("--api-key", a.target.api_key, "Bearer key (default: env UNIGEMMA_API_KEY)");
  app.add_option("--model", a.work.model, "Model id (default: the first of GET /v1/models)");
  app.add_option("--concurrency,-c", a.concurrency, "Concurrent clients per level, e.g. 1,8,32,64")
      ->delimiter(',')
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--requests,-n", a.requests,
                 "Requests per level (default max(8, 4 x concurrency))")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--duration", a.duration_s, "Seconds per level (replaces --requests)")
      ->check(CLI::NonNegativeNumber);
  auto* words = app.add_option("--prompt-words", a.work.prompt_words, "Words per user message")
                    ->check(CLI::PositiveNumber)
                    ->capture_default_str();
  app.add_option("--prompt-tokens", a.prompt_tokens,
                 "Prompt tokens per request (template + prefix included), calibrated against the "
                 "server's usage before the run")
      ->check(CLI::PositiveNumber)
      ->excludes(words);
  app.add_option("--prefix-words", a.work.prefix_words,
                 "Words of a system prompt shared by every request (prefix cache)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--turns", a.work.turns,
                 "Turns per conversation: each turn re-sends the history plus a new user message")
      ->check(CLI::PositiveNumber);
  app.add_option("--temperature", a.work.temperature,
                 "Sampling temperature of each request (0 = greedy; above: the server's top-k / top-p defaults)")
      ->check(CLI::Range(0.0, 2.0))
      ->capture_default_str();
  app.add_option("--max-tokens", a.work.max_tokens, "max_tokens of each request")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--cancel-fraction", a.work.cancel_fraction,
                 "Fraction of requests hung up mid-stream")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--bad-fraction", a.work.bad_fraction,
                 "Fraction of requests with invalid input (must get a 4xx)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--warmup", a.warmup, "Requests before the first level (not counted)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--timeout", a.target.request_timeout_s, "Seconds per request")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--read-timeout", a.target.read_timeout_s, "Longest silence on a connection (s)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--connect-timeout", a.target.connect_timeout_s, "TCP connect timeout (s)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--seed", a.work.seed,
                 "Seed of the prompt words (default: random, so a rerun "
                 "does not hit the prefix cache with the previous run's prompts)");
  app.add_option("--reference-tok-s", a.reference_tok_s,
                 "Single-stream decode ceiling (e.g. `unigemma bench` tg t/s): prints the server "
                 "overhead at concurrency 1");
  app.add_option("--json-out", a.json_out, "Write the results as JSON");
  app.add_flag("--quiet,-q", a.quiet, "No progress lines on stderr");
  CLI11_PARSE(app, argc, argv);
  try {
    return ug::load::run(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: load_gen: %s\n", e.what());
    return 2;
  }
}
