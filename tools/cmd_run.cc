// unigemma run: one prompt (-p) or an interactive multi-turn chat in the terminal.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>

#include "cli_util.h"
#include "command.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "media_args.h"
#include "runtime/chat_session.h"
#include "runtime/engine.h"

namespace ug::cli {
namespace {

std::atomic<bool> g_cancel{false};
std::atomic<bool> g_generating{false};

extern "C" void on_sigint(int) {
  if (g_generating.load()) {
    g_cancel.store(true);  // stop the reply, keep the chat
  } else {
    std::_Exit(130);
  }
}

struct RunArgs {
  std::string model, prompt, system, tokenizer, dtype, load = "auto", json_schema;
  cli::DeviceArgs device;
  bool json = false;
  std::vector<std::string> stops;
  bool think = false, raw = false, greedy = false, stats = false;
  int64_t max_tokens = 512;
  std::optional<float> temperature, top_p, min_p, repeat_penalty;
  std::optional<int32_t> top_k;
  float presence_penalty = 0, frequency_penalty = 0;
  uint64_t seed = 0;
};

SamplingParams sampling_from(const RunArgs& a, const GenerationConfig& g) {
  SamplingParams p = default_sampling(g);
  if (a.temperature) p.temperature = *a.temperature;
  if (a.top_k) p.top_k = *a.top_k;
  if (a.top_p) p.top_p = *a.top_p;
  if (a.min_p) p.min_p = *a.min_p;
  if (a.repeat_penalty) p.repetition_penalty = *a.repeat_penalty;
  if (a.greedy) p.temperature = 0;
  p.presence_penalty = a.presence_penalty;
  p.frequency_penalty = a.frequency_penalty;
  p.seed = a.seed;
  p.validate();
  return p;
}

void print_stats(const GenerationResult& r) {
  double pp = r.stats.prefill_seconds > 0 ? double(r.stats.prompt_tokens) / r.stats.prefill_seconds : 0;
  double tg = r.stats.decode_seconds > 0 ? double(r.stats.generated_tokens) / r.stats.decode_seconds : 0;
  std::fprintf(stderr, "\n[prompt %lld tok, %.1f tok/s | generated %lld tok, %.1f tok/s | finish: %s]\n",
               (long long)r.stats.prompt_tokens, pp, (long long)r.stats.generated_tokens, tg,
               std::string(finish_reason_name(r.finish)).c_str());
}

int run(const RunArgs& a, const MediaArgs& m) {
  EngineOptions opts{.weights = {.weight_dtype = parse_weight_dtype(a.dtype)},
                     .load_mode = parse_load_mode(a.load),
                     .tokenizer_path = a.tokenizer,
                     .device = a.device.spec(),
                     .media = m.options()};
  auto engine = load_engine(a.model, opts, /*require_tokenizer=*/true);
  if (!engine->template_warning.empty()) std::fprintf(stderr, "warning: %s\n", engine->template_warning.c_str());
  std::shared_ptr<const JsonGrammar> json;
  if (a.json) json = JsonGrammar::any_object();
  if (!a.json_schema.empty()) {
    nlohmann::json schema;
    try {
      schema = nlohmann::json::parse(read_text_file(a.json_schema));
    } catch (const nlohmann::json::parse_error& e) {
      fail("{}: invalid JSON: {}", a.json_schema, e.what());
    }
    try {
      json = JsonGrammar::from_schema(schema, "schema");
    } catch (const SchemaError& e) {
      fail("{}: {}", a.json_schema, e.what());
    }
  }
  ChatSession chat(*engine, {.system = a.system,
                             .enable_thinking = a.think,
                             .raw = a.raw,
                             .max_new_tokens = a.max_tokens,
                             .stop_strings = a.stops,
                             .sampling = sampling_from(a, engine->model->generation),
                             .json = json});
  std::signal(SIGINT, on_sigint);
  auto stream = [](std::string_view s) {
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
  };
  auto ask = [&](const std::string& text, std::span<const MediaSource> media) {
    g_cancel = false;
    g_generating = true;
    GenerationResult r;
    try {
      r = chat.send(text, {.on_text = stream, .cancel = &g_cancel}, media);
    } catch (...) {
      g_generating = false;
      throw;
    }
    g_generating = false;
    std::fputc('\n', stdout);
    if (r.finish == FinishReason::Cancelled) std::fprintf(stderr, "[stopped]\n");
    if (a.stats) print_stats(r);
  };
  if (!a.prompt.empty() || !m.items.empty()) {
    ask(a.prompt, m.items);
    return 0;
  }
  std::fprintf(stderr,
               "%s\nInteractive chat. Ctrl-C stops a reply; /image, /audio, /video PATH attach media to "
               "the next message; /reset clears the conversation; /exit or Ctrl-D quits.\n",
               describe(engine->model->config).c_str());
  std::vector<MediaSource> attached;
  std::string line;
  for (;;) {
    std::fputs("> ", stdout);
    std::fflush(stdout);
    if (!std::getline(std::cin, line)) break;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      chat.reset();
      std::fprintf(stderr, "[conversation cleared]\n");
      continue;
    }
    try {
      if (auto item = parse_media_command(line)) {
        attached.push_back(*item);
        std::fprintf(stderr, "[%s attached to the next message: %s]\n",
                     std::string(media_kind_name(item->kind)).c_str(), item->path.c_str());
        continue;
      }
      if (line.empty() && attached.empty()) continue;
      ask(line, attached);
    } catch (const Error& e) {  // a bad file or an over-long turn: say so and keep the conversation
      std::fprintf(stderr, "error: %s\n", e.what());
    }
    attached.clear();
  }
  return 0;
}

RegisterCommand reg("run", "Generate from a prompt (-p) or chat interactively", [](CLI::App& sub) {
  auto a = std::make_shared<RunArgs>();
  auto m = std::make_shared<MediaArgs>();
  add_media_options(sub, m);
  sub.add_option("--model,-m", a->model, "Checkpoint folder (HF layout, with tokenizer.json)")->required();
  sub.add_option("--prompt,-p", a->prompt, "User message; without it: interactive chat");
  sub.add_option("--system,-s", a->system, "System prompt");
  sub.add_flag("--think", a->think, "Enable thinking (<|think|> in the system turn)");
  sub.add_flag("--raw", a->raw, "Send the prompt as raw text, without the chat template");
  sub.add_option("--max-tokens,-n", a->max_tokens, "Maximum tokens per reply")->check(CLI::NonNegativeNumber);
  sub.add_option("--temperature,--temp", a->temperature, "Sampling temperature (0 = greedy)");
  sub.add_option("--top-k", a->top_k, "Top-k (0 = off)");
  sub.add_option("--top-p", a->top_p, "Top-p (1 = off)");
  sub.add_option("--min-p", a->min_p, "Min-p (0 = off)");
  sub.add_option("--repeat-penalty", a->repeat_penalty, "Repetition penalty (HF semantics, 1 = off)");
  sub.add_option("--presence-penalty", a->presence_penalty, "Presence penalty (OpenAI semantics)");
  sub.add_option("--frequency-penalty", a->frequency_penalty, "Frequency penalty (OpenAI semantics)");
  sub.add_option("--seed", a->seed, "Random seed");
  sub.add_flag("--greedy", a->greedy, "Greedy decoding (same as --temperature 0)");
  sub.add_option("--stop", a->stops, "Stop string (repeatable)");
  sub.add_flag("--json", a->json, "Constrain every reply to a JSON object (response_format json_object)");
  sub.add_option("--json-schema", a->json_schema, "Constrain every reply to this JSON Schema file")->excludes("--json");
  sub.add_option("--tokenizer", a->tokenizer, "tokenizer.json (default: MODEL/tokenizer.json)");
  sub.add_option("--dtype", a->dtype, "Weight precision: f32 or bf16 (default: as stored)");
  cli::add_device_options(sub, a->device);
  sub.add_flag("--stats", a->stats, "Print token counts and speed after each reply");
  sub.add_option("--load", a->load, "Weights: auto (copy to huge pages if they fit, else mmap), mmap, copy");
  return [a, m] { return run(*a, *m); };
});

}  // namespace
}  // namespace ug::cli
