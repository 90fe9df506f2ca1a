#include "runtime/engine.h"

#include <filesystem>

#include "core/error.h"
#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "tokenizer/chat_template.h"

namespace ug {
namespace {

// The checkpoint's own chat template, if it ships one (chat_template.jinja or tokenizer_config.json).
std::string shipped_template(const std::filesystem::path& dir) {
  auto jinja = dir / "chat_template.jinja";
  if (std::filesystem::exists(jinja)) return read_text_file(jinja.string());
  auto cfg = dir / "tokenizer_config.json";
  if (!std::filesystem::exists(cfg)) return {};
  auto doc = nlohmann::json::parse(read_text_file(cfg.string()), nullptr, /*allow_exceptions=*/false);
  if (doc.is_object() && doc.contains("chat_template") && doc["chat_template"].is_string())
    return doc["chat_template"].get<std::string>();
  return {};
}

}  // namespace

std::unique_ptr<Engine> load_engine(const std::string& dir, const EngineOptions& options, bool require_tokenizer) {
  namespace fs = std::filesystem;
  auto e = std::make_unique<Engine>();
  e->model = load_model(dir, options.weights, options.load_mode);
  std::string tok_path =
      options.tokenizer_path.empty() ? (fs::path(dir) / "tokenizer.json").string() : options.tokenizer_path;
  if (fs::exists(tok_path)) {
    e->tokenizer = Tokenizer::from_file(tok_path);
    const int64_t model_vocab = e->model->config.text.vocab_size;
    UG_CHECK(e->tokenizer->vocab_size() <= model_vocab, "{}: tokenizer has {} tokens but the model's vocab_size is {}",
             tok_path, e->tokenizer->vocab_size(), model_vocab);
  } else {
    UG_CHECK(!require_tokenizer, "{}: no tokenizer.json (pass --tokenizer FILE)", tok_path);
  }
  std::string jinja = shipped_template(fs::path(dir));
  if (!jinja.empty()) e->template_warning = check_checkpoint_template(jinja);
  e->decoder =
      make_decoder(options.device, e->model->config, *e->model->weights, ThreadPool::global(), options.decoder);
  e->embedder = make_media_embedder(options.device, e->model->config, *e->model->weights, ThreadPool::global());
  e->media = std::make_unique<MediaEncoder>(*e->model, e->tokenizer ? &*e->tokenizer : nullptr, ThreadPool::global(),
                                            options.media, e->embedder.get());
  return e;
}

SamplingParams default_sampling(const GenerationConfig& g) {
  SamplingParams p;
  p.temperature = g.do_sample ? float(g.temperature.value_or(1.0)) : 0.0f;
  // Keys absent from generation_config.json take HF GenerationConfig's defaults.
  p.top_k = int32_t(g.top_k.value_or(50));
  p.top_p = float(g.top_p.value_or(1.0));
  p.min_p = float(g.min_p.value_or(0.0));
  p.repetition_penalty = float(g.repetition_penalty.value_or(1.0));
  for (auto id : g.suppress_tokens) p.suppress_tokens.push_back(int32_t(id));
  return p;
}

}  // namespace ug
