// Built-in model shapes for `unigemma init-random`: the real Gemma 4 12B Unified layout (for speed and
// memory work without the real weights), a tiny one with the real vocabulary and token ids (quick
// start, tests), and a ~1.4B one that leaves the CPU caches (CPU bandwidth benchmarks).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ug {

struct ModelPreset {
  std::string name;
  std::string description;
  nlohmann::json config;             // config.json, as HF writes it
  nlohmann::json generation_config;  // generation_config.json
};

const std::vector<ModelPreset>& model_presets();
const ModelPreset& find_preset(const std::string& name);  // ug::Error listing the known names

}  // namespace ug
