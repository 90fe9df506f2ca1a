// unigemma logits: full-sequence logits (after softcap) for parity checks against HF's forward
// `.logits`.
#include <cstdio>

#include "cli_util.h"
#include "command.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "io/npy.h"
#include "media_args.h"
#include "model/decoder.h"
#include "model/loaded_model.h"
#include "runtime/decoder_factory.h"
#include "runtime/multimodal_prompt.h"

namespace ug::cli {
namespace {

struct LogitsArgs {
  std::string model, tokens, dtype, out, hidden_out;
  cli::DeviceArgs device;
  int64_t chunk = 256;
};

int run_logits(const LogitsArgs& a, const MediaArgs& m) {
  WeightLoadOptions opts{.weight_dtype = parse_weight_dtype(a.dtype)};
  auto model = load_model(a.model, opts);
  std::vector<int32_t> ids = parse_token_list(a.tokens);
  UG_CHECK(!ids.empty(), "--tokens: no token ids given");
  // Media rows fill the image / video / audio soft-token positions of --tokens in order (HF
  // masked_scatter).
  auto embedder = make_media_embedder(a.device.spec(), model->config, *model->weights, ThreadPool::global());
  MediaEncoder media(*model, nullptr, ThreadPool::global(), m.options(), embedder.get());
  PromptInput input = media.scatter(ids, m.items);
  auto decoder_ptr =
      make_decoder(a.device.spec(), model->config, *model->weights, ThreadPool::global(), {.max_chunk = a.chunk});
  Decoder& decoder = *decoder_ptr;
  KvCache cache = decoder.new_cache();
  const int64_t n = int64_t(ids.size()), D = model->config.text.hidden_size, L = model->config.text.n_layers();
  // Hidden states in HF's output_hidden_states layout: [layers + 1, n, hidden]; index 0 =
  // embeddings, 1..L-1 = layer outputs, L = final-normed output of the last layer.
  std::vector<float> hidden;
  HiddenTap tap;
  if (!a.hidden_out.empty()) {
    hidden.resize(size_t((L + 1) * n * D));
    tap = [&](std::string_view name, int64_t first, int64_t count, const float* data) {
      int64_t slot = hf_hidden_state_index(name, L);
      if (slot < 0) return;
      std::copy(data, data + count * D, hidden.begin() + (slot * n + first) * D);
    };
  }
  std::vector<float> logits;
  std::vector<const float*> rows;
  if (input.has_media()) rows = input.override_rows(0, n, D);
  decoder.forward({.token_ids = ids, .embeddings_override = rows, .block_ids = input.block_ids}, cache, LogitsMode::All,
                  logits, tap);
  write_npy(a.out, logits.data(), {n, model->config.text.vocab_size});
  if (!a.hidden_out.empty()) write_npy(a.hidden_out, hidden.data(), {L + 1, n, D});
  std::fprintf(stderr, "wrote %s [%lld, %lld]\n", a.out.c_str(), (long long)n,
               (long long)model->config.text.vocab_size);
  return 0;
}

RegisterCommand reg("logits", "Write float32 logits [n_tokens, vocab] for every position (after softcap)",
                    [](CLI::App& sub) {
                      auto a = std::make_shared<LogitsArgs>();
                      auto m = std::make_shared<MediaArgs>();
                      add_media_options(sub, m);
                      sub.add_option("--model,-m", a->model, "Checkpoint folder (HF layout)")->required();
                      sub.add_option("--tokens,-t", a->tokens, "FILE.npy or ID,ID,...")->required();
                      sub.add_option("--dtype", a->dtype, "Weight precision: f32 or bf16 (default: as stored)");
                      cli::add_device_options(sub, a->device);
                      sub.add_option("--out,-o", a->out, "Output .npy")->required();
                      sub.add_option("--hidden-out", a->hidden_out,
                                     "Also write hidden states [layers+1, n, hidden] (HF output_hidden_states)");
                      sub.add_option("--chunk", a->chunk, "Prefill chunk size")->check(CLI::PositiveNumber);
                      return [a, m] { return run_logits(*a, *m); };
                    });

}  // namespace
}  // namespace ug::cli
