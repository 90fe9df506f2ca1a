// unigemma init-random: a random-weight checkpoint of a built-in shape (the real 12B layout included).
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "command.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "model/presets.h"
#include "model/random_checkpoint.h"

namespace ug::cli {
namespace {

struct InitArgs {
  std::string preset, out, tokenizer, dtype = "bf16";
  uint64_t seed = 0;
  double shard_gb = 5.0;
};

int run_init(const InitArgs& a) {
  const ModelPreset& preset = find_preset(a.preset);
  UG_CHECK(a.dtype == "bf16" || a.dtype == "f32", "--dtype: expected bf16 or f32, got '{}'", a.dtype);
  UG_CHECK(a.shard_gb > 0, "--shard-gb must be positive");
  auto t0 = std::chrono::steady_clock::now();
  RandomCheckpointOptions opts{.seed = a.seed,
                               .dtype = a.dtype == "bf16" ? DType::BF16 : DType::F32,
                               .max_shard_bytes = size_t(a.shard_gb * double(1 << 30))};
  size_t bytes = write_random_checkpoint(a.out, preset.config, preset.generation_config, opts, ThreadPool::global());
  if (!a.tokenizer.empty()) {
    namespace fs = std::filesystem;
    UG_CHECK(fs::exists(a.tokenizer), "--tokenizer: {} does not exist", a.tokenizer);
    fs::copy_file(a.tokenizer, fs::path(a.out) / "tokenizer.json", fs::copy_options::overwrite_existing);
    auto cfg = fs::path(a.tokenizer).parent_path() / "tokenizer_config.json";
    if (fs::exists(cfg))
      fs::copy_file(cfg, fs::path(a.out) / "tokenizer_config.json", fs::copy_options::overwrite_existing);
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("wrote %s: preset %s (%s), %.2f GB of weights in %.1f s\n", a.out.c_str(), preset.name.c_str(),
              preset.description.c_str(), double(bytes) / 1e9, s);
  return 0;
}

RegisterCommand reg("init-random", "Write a random-weight HF-format checkpoint of a built-in shape", [](CLI::App& sub) {
  auto a = std::make_shared<InitArgs>();
  std::string names;
  for (const auto& p : model_presets()) names += "\n  " + p.name + ": " + p.description;
  sub.add_option("--preset", a->preset, "Model shape:" + names)->required();
  sub.add_option("--out,-o", a->out, "Output folder")->required();
  sub.add_option("--seed", a->seed, "Random seed");
  sub.add_option("--dtype", a->dtype, "bf16 (default) or f32");
  sub.add_option("--shard-gb", a->shard_gb, "Maximum shard size in GiB (HF default 5)");
  sub.add_option("--tokenizer", a->tokenizer, "Copy this tokenizer.json (and tokenizer_config.json) into the folder");
  return [a] { return run_init(*a); };
});

}  // namespace
}  // namespace ug::cli
