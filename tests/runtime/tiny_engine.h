// A tiny random checkpoint with the 12B's vocabulary, token ids and the real tokenizer (fetched by
// scripts/fetch_tokenizer.sh), loaded as an Engine: the runtime tests that need text share it.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "model/presets.h"
#include "model/random_checkpoint.h"
#include "runtime/engine.h"
#include "test_util.h"

namespace ug::test {

struct TinyEngine {
  TempDir dir;
  std::unique_ptr<Engine> engine;
};

// nullptr when the tokenizer asset is missing (the caller fails or skips, saying so).
inline std::unique_ptr<TinyEngine> load_tiny_engine(uint64_t seed, const EngineOptions& options = {}) {
  const std::string tok = asset_path("tokenizer/tokenizer.json");
  if (!std::filesystem::exists(tok)) return nullptr;
  auto t = std::make_unique<TinyEngine>();
  const ModelPreset& p = find_preset("tiny");
  write_random_checkpoint(t->dir.path(), p.config, p.generation_config, {.seed = seed}, ThreadPool::global());
  std::filesystem::copy_file(tok, t->dir.file("tokenizer.json"));
  t->engine = load_engine(t->dir.path(), options, true);
  return t;
}

// A test suite with one tiny engine (Seed, options from Derived::engine_options() if it declares one).
template <typename Derived, uint64_t Seed>
class TinyEngineSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    EngineOptions options;
    if constexpr (requires { Derived::engine_options(); }) options = Derived::engine_options();
    tiny_ = load_tiny_engine(Seed, options).release();
    if (tiny_) engine_ = tiny_->engine.get();
  }
  static void TearDownTestSuite() {
    delete tiny_;
    tiny_ = nullptr;
    engine_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(engine_, nullptr) << asset_path("tokenizer/tokenizer.json") << " missing: run scripts/fetch_tokenizer.sh";
  }
  static inline TinyEngine* tiny_ = nullptr;
  static inline Engine* engine_ = nullptr;
};

}  // namespace ug::test
