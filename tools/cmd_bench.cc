// unigemma bench: llama-bench style prompt-processing (pp) and token-generation (tg) speed, mean ± sd over
// repetitions, with decode's weight-read bandwidth as a fraction of the machine's measured ceiling.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/memory_bandwidth.h"
#include "cli_util.h"
#include "command.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "model/decoder.h"
#include "model/loaded_model.h"

namespace ug::cli {
namespace {

struct BenchArgs {
  std::string model, dtype, load = "auto";
  int64_t prompt = 512, gen = 128, reps = 5;
  bool skip_bandwidth = false;
};

struct Stat {
  double mean = 0, sd = 0;
};

Stat stats(const std::vector<double>& v) {
  Stat s;
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= double(v.size());
  for (double x : v) s.sd += (x - s.mean) * (x - s.mean);
  s.sd = v.size() > 1 ? std::sqrt(s.sd / double(v.size() - 1)) : 0;
  return s;
}

size_t matrix_bytes(const MatrixRef& m) { return m.data ? size_t(m.rows * m.cols) * dtype_size(m.dtype) : 0; }

// Bytes of weights one decode step reads: every layer matrix plus the LM head (the tied embedding
// table is read in full for the logits; the single embedding row is negligible).
size_t decode_weight_bytes(const ModelWeights& w) {
  size_t b = matrix_bytes(w.lm_head);
  for (const auto& l : w.layers)
    for (const MatrixRef* m : {&l.attn.q_proj, &l.attn.k_proj, &l.attn.v_proj, &l.attn.o_proj, &l.mlp.gate_proj,
                               &l.mlp.up_proj, &l.mlp.down_proj})
      b += matrix_bytes(*m);
  return b;
}

double seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int run_bench(const BenchArgs& a) {
  auto model = load_model(a.model, {.weight_dtype = parse_weight_dtype(a.dtype)}, parse_load_mode(a.load));
  const auto& cfg = model->config.text;
  ThreadPool& pool = ThreadPool::global();
  Decoder decoder(model->config, *model->weights, pool);
  std::mt19937 rng(42);
  std::uniform_int_distribution<int32_t> tok(10, int32_t(std::min<int64_t>(cfg.vocab_size, 200000)) - 1);
  std::vector<int32_t> prompt(size_t(std::max<int64_t>(a.prompt, 1)));
  for (auto& t : prompt) t = tok(rng);

  std::printf("model: %s\n%s\nthreads: %d, isa: %s, weights: %s, %s\n", a.model.c_str(),
              describe(model->config).c_str(), pool.size(), std::string(cpu::isa_name(cpu::active_isa())).c_str(),
              std::string(dtype_name(model->weights->matrix_dtype)).c_str(),
              model->weights->residency == WeightResidency::Copied ? "copied to huge pages" : "memory-mapped");
  std::vector<double> pp, tg;
  std::vector<float> logits;
  for (int64_t r = 0; r < a.reps + 1; ++r) {  // the first repetition warms up (pages the weights in)
    KvCache cache = decoder.new_cache();
    auto t0 = std::chrono::steady_clock::now();
    if (a.prompt > 0) decoder.forward({.token_ids = prompt}, cache, LogitsMode::Last, logits);
    double t_pp = seconds(t0);
    if (a.prompt == 0) {
      int32_t first[1] = {prompt[0]};
      decoder.forward({.token_ids = first}, cache, LogitsMode::Last, logits);
    }
    auto t1 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < a.gen; ++i) {
      int32_t next[1] = {int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin())};
      decoder.forward({.token_ids = next}, cache, LogitsMode::Last, logits);
    }
    double t_tg = seconds(t1);
    if (r == 0) continue;
    if (a.prompt > 0) pp.push_back(double(a.prompt) / t_pp);
    if (a.gen > 0) tg.push_back(double(a.gen) / t_tg);
  }
  Stat spp = stats(pp), stg = stats(tg);
  std::printf("\n| test   |            t/s |\n|--------|----------------|\n");
  if (a.prompt > 0) std::printf("| pp%-4lld | %7.2f ± %5.2f |\n", (long long)a.prompt, spp.mean, spp.sd);
  if (a.gen > 0) std::printf("| tg%-4lld | %7.2f ± %5.2f |\n", (long long)a.gen, stg.mean, stg.sd);
  size_t bytes = decode_weight_bytes(*model->weights);
  double achieved = double(bytes) * stg.mean;
  std::printf("\ndecode reads %.3f GB of weights per token -> %.2f GB/s\n", double(bytes) / 1e9, achieved / 1e9);
  if (!a.skip_bandwidth && a.gen > 0) {
    double ceiling = cpu::measure_read_bandwidth(pool);
    std::printf("measured memory read bandwidth: %.2f GB/s -> decode achieves %.1f%% of it\n", ceiling / 1e9,
                100.0 * achieved / ceiling);
  }
  return 0;
}

RegisterCommand reg("bench", "Prompt-processing and generation speed (llama-bench style)", [](CLI::App& sub) {
  auto a = std::make_shared<BenchArgs>();
  sub.add_option("--model,-m", a->model, "Checkpoint folder")->required();
  sub.add_option("-p,--n-prompt", a->prompt, "Prompt tokens (0 = skip pp)")->check(CLI::NonNegativeNumber);
  sub.add_option("-n,--n-gen", a->gen, "Generated tokens (0 = skip tg)")->check(CLI::NonNegativeNumber);
  sub.add_option("-r,--repetitions", a->reps, "Repetitions (after one warm-up)")->check(CLI::PositiveNumber);
  sub.add_option("--dtype", a->dtype, "Weight precision: f32 or bf16 (default: as stored)");
  sub.add_flag("--no-bandwidth", a->skip_bandwidth, "Skip the memory bandwidth measurement");
  sub.add_option("--load", a->load, "Weights: auto (copy to huge pages if they fit, else mmap), mmap, copy");
  return [a] { return run_bench(*a); };
});

}  // namespace
}  // namespace ug::cli
