#include "model/loaded_model.h"

#include <filesystem>

#include "core/error.h"

namespace ug {

std::unique_ptr<LoadedModel> load_model(const std::string& dir, const WeightLoadOptions& options) {
  namespace fs = std::filesystem;
  UG_CHECK(fs::is_directory(dir), "{}: not a directory (expected a checkpoint folder with config.json)", dir);
  auto m = std::make_unique<LoadedModel>();
  m->dir = dir;
  std::string config_path = (fs::path(dir) / "config.json").string();
  UG_CHECK(fs::exists(config_path), "{}: missing config.json", dir);
  m->config = load_model_config(config_path);
  m->generation = load_generation_config((fs::path(dir) / "generation_config.json").string(), m->config);
  m->checkpoint = std::make_unique<Checkpoint>(dir);
  m->weights = ModelWeights::load(*m->checkpoint, m->config, options);
  return m;
}

}  // namespace ug
