#include "model/loaded_model.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace ug {

namespace {
// MemAvailable from /proc/meminfo in bytes; 0 when unknown.
size_t available_memory() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  size_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb * 1024;
  return 0;
}
}  // namespace

LoadMode parse_load_mode(const std::string& name) {
  if (name == "auto") return LoadMode::Auto;
  if (name == "mmap") return LoadMode::Mmap;
  if (name == "copy") return LoadMode::Copy;
  fail("--load: expected auto, mmap or copy, got '{}'", name);
}

WeightResidency resolve_residency(LoadMode mode, size_t checkpoint_bytes) {
  if (mode == LoadMode::Mmap) return WeightResidency::Mapped;
  if (mode == LoadMode::Copy) return WeightResidency::Copied;
  size_t avail = available_memory();
  return avail > 0 && double(checkpoint_bytes) < 0.6 * double(avail) ? WeightResidency::Copied
                                                                     : WeightResidency::Mapped;
}

std::unique_ptr<LoadedModel> load_model(const std::string& dir, const WeightLoadOptions& options, LoadMode mode) {
  namespace fs = std::filesystem;
  UG_CHECK(fs::is_directory(dir), "{}: not a directory (expected a checkpoint folder with config.json)", dir);
  auto m = std::make_unique<LoadedModel>();
  m->dir = dir;
  std::string config_path = (fs::path(dir) / "config.json").string();
  UG_CHECK(fs::exists(config_path), "{}: missing config.json", dir);
  m->config = load_model_config(config_path);
  m->generation = load_generation_config((fs::path(dir) / "generation_config.json").string(), m->config);
  m->checkpoint = std::make_unique<Checkpoint>(dir);
  WeightLoadOptions opts = options;
  if (mode != LoadMode::Mmap) opts.residency = resolve_residency(mode, m->checkpoint->total_bytes());
  m->weights = ModelWeights::load(*m->checkpoint, m->config, opts);
  return m;
}

}  // namespace ug
