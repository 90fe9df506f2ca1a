// unigemma info: open and validate a checkpoint folder without reading its weights, and describe it.
#include <chrono>
#include <cstdio>

#include "command.h"
#include "core/error.h"
#include "model/loaded_model.h"

namespace ug::cli {
namespace {

// KV cache bytes at f32 (CPU) for a context of n tokens: sliding layers hold at most the window.
double kv_bytes(const TextConfig& t, int64_t n) {
  double b = 0;
  for (const auto& l : t.layers) {
    int64_t kept = l.kind == LayerKind::Sliding ? std::min(n, t.sliding_window) : n;
    b += 2.0 * double(kept) * double(l.n_kv_heads * l.head_dim) * 4.0;
  }
  return b;
}

int run_info(const std::string& dir) {
  auto t0 = std::chrono::steady_clock::now();
  auto model = load_model(dir, {.warn_unused = true});
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto& c = model->config;
  std::printf("%s\n%s\n", dir.c_str(), describe(c).c_str());
  std::printf("tensors: %zu in %zu file(s), %.2f GB, matrices %s\n", model->checkpoint->names().size(),
              model->checkpoint->files().size(), double(model->checkpoint->total_bytes()) / 1e9,
              std::string(dtype_name(model->weights->matrix_dtype)).c_str());
  std::printf("stop ids:");
  for (auto id : model->generation.eos_token_ids) std::printf(" %lld", (long long)id);
  std::printf("; suppressed:");
  for (auto id : model->generation.suppress_tokens) std::printf(" %lld", (long long)id);
  std::printf("\nKV cache (f32): %.1f MB at 8k tokens, %.1f MB at 128k tokens\n", kv_bytes(c.text, 8192) / 1e6,
              kv_bytes(c.text, 131072) / 1e6);
  std::printf("opened and validated in %.3f s (weights page in on first use)\n", s);
  return 0;
}

RegisterCommand reg("info", "Open and validate a checkpoint folder and describe it", [](CLI::App& sub) {
  auto dir = std::make_shared<std::string>();
  sub.add_option("--model,-m", *dir, "Checkpoint folder")->required();
  return [dir] { return run_info(*dir); };
});

}  // namespace
}  // namespace ug::cli
