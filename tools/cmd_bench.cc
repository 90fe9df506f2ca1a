// unigemma bench: llama-bench style prompt processing (pp) and token generation (tg) speed, mean ±
// sd over repetitions, each printed with its fraction of the machine's ceilings: decode's bytes
// read per step (weights + KV) against the memory bandwidth, prefill's matmul FLOP/s against the
// compute ceiling. Decode can run batched (-b 1,8,32,64) at a given context (--ctx): every sequence
// starts from a clone of one prefilled KV cache, so a batch of 64 at 16k context costs one 16k
// prefill.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/memory_bandwidth.h"
#include "bench_stats.h"
#include "bench_ttft.h"
#include "cli_util.h"
#include "command.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "model/decoder.h"
#include "model/loaded_model.h"
#include "runtime/decoder_factory.h"
#include "runtime/sampler.h"

namespace ug::cli {
namespace {

struct BenchArgs {
  std::string model, dtype, load = "auto";
  cli::DeviceArgs device;
  std::vector<int64_t> prompts{512}, batches{1}, contexts{0};
  int64_t gen = 128, reps = 5, chunk = 0;
  double bandwidth_gbs = 0, tflops = 0;  // ceilings; 0 = measure (CPU bandwidth) or leave out
  bool skip_bandwidth = false;
  bool ttft_image = false;
  bool sample = false;  // decode by sampling (Gemma's generation_config) instead of greedy
  TtftImageArgs ttft;
};

size_t matrix_bytes(const MatrixRef& m) { return m.data ? size_t(m.rows * m.cols) * dtype_size(m.dtype) : 0; }
size_t matrix_params(const MatrixRef& m) { return m.data ? size_t(m.rows * m.cols) : 0; }

// Weights one decode step reads: every layer matrix plus the LM head (the tied embedding table is
// read in full for the logits; the single embedding row is negligible). params: the same matrices'
// element count.
size_t decode_weight_bytes(const ModelWeights& w, size_t* params) {
  size_t b = matrix_bytes(w.lm_head);
  *params = matrix_params(w.lm_head);
  for (const auto& l : w.layers)
    for (const MatrixRef* m : {&l.attn.q_proj, &l.attn.k_proj, &l.attn.v_proj, &l.attn.o_proj, &l.mlp.gate_proj,
                               &l.mlp.up_proj, &l.mlp.down_proj}) {
      b += matrix_bytes(*m);
      *params += matrix_params(*m);
    }
  return b;
}

// KV bytes one sequence's decode step reads at context n (elements of the backend's KV cache: f32 on the CPU,
// bf16 on CUDA unless faithful; sliding layers see at most the window).
size_t kv_read_bytes(const TextConfig& t, int64_t n, size_t element_bytes) {
  size_t b = 0;
  for (const auto& l : t.layers) {
    const int64_t keys = l.kind == LayerKind::Sliding ? std::min(n, t.sliding_window) : n;
    b += size_t(2 * keys * l.n_kv_heads * l.head_dim) * element_bytes;
  }
  return b;
}

struct Bench {
  const BenchArgs& a;
  const ModelConfig& config;
  Decoder& decoder;
  std::vector<int32_t> tokens;  // random ids, long enough for any prompt / context
  std::vector<float> logits;
  int64_t draws = 0, whole_rows = 0;  // --sample: draws, and those whose candidates came back as the whole row

  std::span<const int32_t> prompt(int64_t n) const { return {tokens.data(), size_t(n)}; }

  // Prefill of n tokens from an empty cache, tokens/s over the repetitions (after one warm-up).
  Stat prefill(int64_t n) {
    std::vector<double> v;
    for (int64_t r = 0; r < a.reps + 1; ++r) {
      KvCache cache = decoder.new_cache();
      auto t0 = std::chrono::steady_clock::now();
      decoder.forward({.token_ids = prompt(n)}, cache, LogitsMode::Last, logits);
      if (r > 0) v.push_back(double(n) / seconds_since(t0));
    }
    return stats(v);
  }

  // Gemma's generation_config sampling (temperature 1, top-k 64, top-p 0.95) for --sample.
  static SamplingParams gemma_sampling(uint64_t seed) {
    SamplingParams p;
    p.temperature = 1.0f;
    p.top_k = 64;
    p.top_p = 0.95f;
    p.seed = seed;
    return p;
  }

  // Aggregate decode tokens/s of `batch` sequences at context `ctx`: greedy (each feeds back its argmax), or with
  // --sample each draws from the backend's top-k candidates with its own sampler, as the server does.
  Stat decode(int64_t batch, int64_t ctx) {
    KvCache base = decoder.new_cache();
    decoder.forward({.token_ids = prompt(std::max<int64_t>(ctx, 1))}, base, LogitsMode::Last, logits);
    std::vector<double> v;
    for (int64_t r = 0; r < a.reps + 1; ++r) {
      std::vector<KvCache> caches(size_t(batch), base);
      // Room for the generated tokens up front, as the server reserves prompt + max_tokens: else every layer of
      // every clone reallocates (and copies) at the first step, inside the timed steps.
      for (KvCache& c : caches) c.reserve(std::max<int64_t>(ctx, 1) + a.gen);
      std::vector<int32_t> next(size_t(batch),
                                int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin()));
      std::vector<BatchItem> items(static_cast<size_t>(batch));
      std::vector<Sampler> samplers;
      std::vector<TopLogits> tops(static_cast<size_t>(batch), TopLogits{.k = 64});
      for (int64_t i = 0; i < batch && a.sample; ++i)
        samplers.emplace_back(gemma_sampling(uint64_t(i)), int32_t(config.text.vocab_size));
      auto t0 = std::chrono::steady_clock::now();
      for (int64_t step = 0; step < a.gen; ++step) {
        // Greedy on the device: the step feeds each sequence's argmax back (written over its input token).
        for (int64_t i = 0; i < batch; ++i) {
          items[size_t(i)] = {.input = {.token_ids = {&next[size_t(i)], 1}},
                              .cache = &caches[size_t(i)],
                              .mode = LogitsMode::Last};
          if (a.sample)
            items[size_t(i)].top_logits = &tops[size_t(i)];
          else
            items[size_t(i)].argmax = &next[size_t(i)];
        }
        decoder.forward_batch(items);
        for (int64_t i = 0; i < batch && a.sample; ++i) {
          next[size_t(i)] = samplers[size_t(i)].sample_top(tops[size_t(i)]);
          whole_rows += tops[size_t(i)].full.empty() ? 0 : 1;
          ++draws;
        }
      }
      if (r > 0) v.push_back(double(batch * a.gen) / seconds_since(t0));
    }
    return stats(v);
  }
};

int run_bench(const BenchArgs& a) {
  DeviceSpec device = a.device.spec();
  auto model = load_model(a.model, {.weight_dtype = parse_weight_dtype(a.dtype)}, parse_load_mode(a.load));
  const auto& cfg = model->config.text;
  ThreadPool& pool = ThreadPool::global();
  const bool cpu = device.kind == DeviceSpec::Kind::Cpu;
  const int64_t chunk = a.chunk > 0 ? a.chunk : (cpu ? 256 : 2048);
  auto decoder = make_decoder(device, model->config, *model->weights, pool, {.max_chunk = chunk});
  int64_t longest = 1;
  for (int64_t p : a.prompts) longest = std::max(longest, p);
  for (int64_t c : a.contexts) longest = std::max(longest, c + 1);
  if (a.ttft_image) longest = std::max(longest, a.ttft.text_tokens);
  Bench b{.a = a, .config = model->config, .decoder = *decoder};
  std::mt19937 rng(42);
  std::uniform_int_distribution<int32_t> tok(10, int32_t(std::min<int64_t>(cfg.vocab_size, 200000)) - 1);
  b.tokens.resize(size_t(longest));
  for (auto& t : b.tokens) t = tok(rng);

  size_t params = 0;
  const size_t weight_bytes = decode_weight_bytes(*model->weights, &params);
  std::printf("model: %s\n%s\ndevice: %s, weights: %s, prefill chunk %lld", a.model.c_str(),
              describe(model->config).c_str(), to_string(device).c_str(),
              cpu ? std::string(dtype_name(model->weights->matrix_dtype)).c_str() : "bf16", (long long)chunk);
  if (cpu)
    std::printf(", threads: %d, isa: %s, %s", pool.size(), std::string(cpu::isa_name(cpu::active_isa())).c_str(),
                model->weights->residency == WeightResidency::Copied ? "copied to huge pages" : "memory-mapped");
  if (!cpu) std::printf(", precision %s, KV cache %s", device.precision.c_str(), device.kv_cache.c_str());
  std::printf("\ndecode reads %.3f GB of weights per step; matmul work %.2f GFLOP per token\n",
              double(weight_bytes) / 1e9, 2.0 * double(params) / 1e9);
  if (a.gen > 0)
    std::printf("decode: %s\n", a.sample ? "sampled (temperature 1, top-k 64, top-p 0.95; the backend's top-k candidates)"
                                         : "greedy (the backend's argmax)");
  double bandwidth = a.bandwidth_gbs * 1e9;
  if (bandwidth == 0 && cpu && !a.skip_bandwidth && a.gen > 0) bandwidth = cpu::measure_read_bandwidth(pool);
  if (bandwidth > 0) std::printf("bandwidth ceiling: %.1f GB/s\n", bandwidth / 1e9);
  if (a.tflops > 0) std::printf("compute ceiling: %.1f TFLOP/s\n", a.tflops);

  std::printf(
      "\n| test                 |              t/s | of ceiling                  |\n"
      "|----------------------|------------------|-----------------------------|\n");
  for (int64_t p : a.prompts) {
    if (p <= 0) continue;
    Stat s = b.prefill(p);
    char frac[64] = "";
    if (a.tflops > 0)
      std::snprintf(frac, sizeof frac, "%.1f%% of compute (matmuls)",
                    100.0 * 2.0 * double(params) * s.mean / (a.tflops * 1e12));
    std::printf("| pp%-18lld | %8.1f ± %6.1f | %-27s |\n", (long long)p, s.mean, s.sd, frac);
    std::fflush(stdout);
  }
  if (a.gen > 0) {
    for (int64_t ctx : a.contexts) {
      for (int64_t batch : a.batches) {
        Stat s = b.decode(batch, ctx);
        const double steps = s.mean / double(batch);
        const double bytes = double(weight_bytes) +
                             double(batch) * double(kv_read_bytes(cfg, ctx, decoder->backend().kv_element_bytes()));
        char name[64], frac[64] = "";
        std::snprintf(name, sizeof name, "tg%lld b%lld ctx%lld", (long long)a.gen, (long long)batch, (long long)ctx);
        if (bandwidth > 0) std::snprintf(frac, sizeof frac, "%.1f%% of bandwidth", 100.0 * bytes * steps / bandwidth);
        std::printf("| %-20s | %8.1f ± %6.1f | %-27s |\n", name, s.mean, s.sd, frac);
        std::fflush(stdout);
      }
    }
  }
  if (b.draws > 0 && b.whole_rows > 0)
    std::printf("sampled: %lld of %lld draws got the whole row back (more ties at the top-k boundary than room)\n",
                (long long)b.whole_rows, (long long)b.draws);
  if (a.ttft_image) {
    auto embedder = make_media_embedder(device, model->config, *model->weights, pool);
    bench_ttft_image(*model, *decoder, *embedder, b.tokens, a.ttft, a.reps, pool);
  }
  const int64_t free = decoder->backend().free_memory_bytes();
  if (free >= 0) std::printf("\ndevice memory free at the end: %.2f GB\n", double(free) / 1e9);
  return 0;
}

RegisterCommand reg("bench", "Prompt-processing and generation speed (llama-bench style)", [](CLI::App& sub) {
  auto a = std::make_shared<BenchArgs>();
  sub.add_option("--model,-m", a->model, "Checkpoint folder")->required();
  sub.add_option("-p,--n-prompt", a->prompts, "Prompt lengths, e.g. 512,2048 (0 = skip pp)")->delimiter(',');
  sub.add_option("-n,--n-gen", a->gen, "Generated tokens per decode run (0 = skip tg)")->check(CLI::NonNegativeNumber);
  sub.add_option("-b,--batch", a->batches, "Decode batch sizes, e.g. 1,8,32,64")->delimiter(',');
  sub.add_option("--ctx", a->contexts, "Decode context lengths, e.g. 1024,16384 (default 0)")->delimiter(',');
  sub.add_option("-r,--repetitions", a->reps, "Repetitions (after one warm-up)")->check(CLI::PositiveNumber);
  sub.add_option("--dtype", a->dtype, "Weight precision: f32 or bf16 (default: as stored)");
  cli::add_device_options(sub, a->device);
  sub.add_option("--chunk", a->chunk, "Prefill chunk size (default 256 on cpu, 2048 on cuda)");
  sub.add_option("--bandwidth-ceiling", a->bandwidth_gbs, "Memory bandwidth ceiling in GB/s (cpu: measured)");
  sub.add_option("--compute-ceiling", a->tflops, "Compute ceiling in TFLOP/s (prints prefill's fraction)");
  sub.add_flag("--no-bandwidth", a->skip_bandwidth, "Skip the memory bandwidth measurement");
  sub.add_flag("--sample", a->sample,
               "Decode by sampling (temperature 1, top-k 64, top-p 0.95, as the server does) instead of greedy");
  sub.add_option("--load", a->load, "Weights: auto (copy to huge pages if they fit, else mmap), mmap, copy");
  sub.add_flag("--ttft-image", a->ttft_image,
               "Time to first token of one image + --ttft-text text tokens (a synthetic 896x896 image decoded, "
               "preprocessed and embedded each time, then the prefill)");
  sub.add_option("--ttft-image-file", a->ttft.file,
                 "With --ttft-image: this image file (any format the build decodes) instead of the synthetic one");
  sub.add_option("--ttft-text", a->ttft.text_tokens, "Text tokens after the image (default 50)")
      ->check(CLI::NonNegativeNumber);
  sub.add_option("--image-tokens", a->ttft.image_tokens,
                 "Soft-token budget of the image (default: the model's num_soft_tokens, 280 for the 12B)")
      ->check(CLI::NonNegativeNumber);
  return [a] { return run_bench(*a); };
});

}  // namespace
}  // namespace ug::cli
