// Generality: configs other than the main fixture, each checked against HF transformers 5.17 logits
// (tests/data/extra_configs, made by scripts/reference/make_extra_configs.py), and the flat config.json
// form (real 12B checkpoint) vs the per_layer_config form on the same weights.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/bf16.h"
#include "core/error.h"
#include "io/checkpoint.h"
#include "io/safetensors_writer.h"
#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "io/npy.h"
#include "model/decoder.h"
#include "model/loaded_model.h"
#include "test_util.h"

namespace ug {
namespace {

std::vector<float> run_logits(const std::string& dir, const std::vector<int32_t>& ids, WeightLoadOptions opts = {},
                              int64_t chunk = 256) {
  auto model = load_model(dir, opts);
  Decoder decoder(model->config, *model->weights, ThreadPool::global(), {.max_chunk = chunk});
  KvCache cache(model->config.text);
  std::vector<float> logits;
  decoder.forward({.token_ids = ids}, cache, LogitsMode::All, logits);
  return logits;
}

std::vector<int32_t> ids_of(const std::string& path) {
  std::vector<int32_t> ids;
  for (int64_t v : npy_as_i64(read_npy(path))) ids.push_back(int32_t(v));
  return ids;
}

// Max |a - b| relative to the largest reference magnitude (these random models have logits ~1).
float rel_diff(const std::vector<float>& a, const std::vector<float>& ref) {
  EXPECT_EQ(a.size(), ref.size());
  float m = 0, scale = 0;
  for (size_t i = 0; i < std::min(a.size(), ref.size()); ++i) {
    m = std::max(m, std::fabs(a[i] - ref[i]));
    scale = std::max(scale, std::fabs(ref[i]));
  }
  return m / scale;
}

class ExtraConfig : public ::testing::TestWithParam<const char*> {};

TEST_P(ExtraConfig, F32LogitsMatchHF) {
  std::string dir = test::data_path(std::string("extra_configs/") + GetParam());
  auto ids = ids_of(dir + "/input_ids.npy");
  auto ref = npy_as_f32(read_npy(dir + "/logits_f32.npy"));
  EXPECT_LE(rel_diff(run_logits(dir, ids), ref), 3e-5f);
  EXPECT_LE(rel_diff(run_logits(dir, ids, {}, 3), ref), 3e-5f);  // chunks smaller than the window
}

TEST_P(ExtraConfig, Bf16WeightsMatchHF) {
  std::string dir = test::data_path(std::string("extra_configs/") + GetParam());
  auto ids = ids_of(dir + "/input_ids.npy");
  auto ref = npy_as_f32(read_npy(dir + "/logits_bf16w_f32.npy"));
  EXPECT_LE(rel_diff(run_logits(dir, ids, {.weight_dtype = DType::BF16}), ref), 3e-5f);
}

INSTANTIATE_TEST_SUITE_P(HF, ExtraConfig, ::testing::Values("gqa_v_proj", "mqa_no_softcap"));

// The published 12B config.json uses flat global_head_dim / num_global_key_value_heads keys.
TEST(ConfigForms, FlatKeysEqualPerLayerConfig) {
  std::string src = test::data_path("tiny_kv_eq/model-f32");
  auto cfg = nlohmann::json::parse(read_text_file(src + "/config.json"));
  auto& t = cfg["text_config"];
  t.erase("per_layer_config");
  t["global_head_dim"] = 32;
  t["num_global_key_value_heads"] = 1;
  test::TempDir tmp;
  test::write_file(tmp.file("config.json"), cfg.dump(2));
  std::filesystem::create_symlink(src + "/model.safetensors", tmp.file("model.safetensors"));
  auto ids = ids_of(test::data_path("tiny_kv_eq/text_short/input_ids.npy"));
  EXPECT_EQ(run_logits(tmp.path(), ids), run_logits(src, ids));
}

}  // namespace
}  // namespace ug

namespace ug {
namespace {

// Weights copied into huge-page memory compute exactly what the mapped weights compute.
TEST(WeightResidency, CopiedEqualsMapped) {
  for (const char* model : {"tiny_kv_eq/model-bf16", "tiny_kv_eq/model-f32"}) {
    std::string dir = test::data_path(model);
    auto ids = ids_of(test::data_path("tiny_kv_eq/text_short/input_ids.npy"));
    EXPECT_EQ(run_logits(dir, ids, {.residency = WeightResidency::Copied}), run_logits(dir, ids)) << model;
  }
  EXPECT_EQ(resolve_residency(LoadMode::Mmap, 1), WeightResidency::Mapped);
  EXPECT_EQ(resolve_residency(LoadMode::Copy, size_t(1) << 50), WeightResidency::Copied);
  EXPECT_EQ(resolve_residency(LoadMode::Auto, size_t(1) << 50), WeightResidency::Mapped);  // 1 PB never fits
  EXPECT_THROW(parse_load_mode("swap"), Error);
}

}  // namespace
}  // namespace ug

namespace ug {
namespace {

// An F16 checkpoint (the f32 fixture rounded to half) loads, is widened to f32, and lands much closer to
// the f32 reference than bf16 weights do (11 vs 8 mantissa bits).
TEST(CheckpointDtypes, F16WeightsAreWidenedExactly) {
  std::string src = test::data_path("tiny_kv_eq/model-f32");
  Checkpoint ckpt(src);
  std::vector<TensorToWrite> tensors;
  for (const auto& name : ckpt.names()) {
    const TensorInfo& t = ckpt.get(name);
    ASSERT_EQ(t.dtype, DType::F32);
    tensors.push_back({name, DType::F16, t.shape, [&t](size_t offset, std::span<std::byte> out) {
                         for (size_t i = 0; i < out.size() / 2; ++i) {
                           float f;
                           std::memcpy(&f, t.data + (offset / 2 + i) * 4, 4);
                           uint16_t h = f32_to_f16(f);
                           std::memcpy(out.data() + i * 2, &h, 2);
                         }
                       }});
  }
  test::TempDir tmp;
  std::filesystem::copy_file(src + "/config.json", tmp.file("config.json"));
  write_safetensors(tmp.file("model.safetensors"), tensors);
  auto ids = ids_of(test::data_path("tiny_kv_eq/text_short/input_ids.npy"));
  auto f16 = run_logits(tmp.path(), ids);
  auto ref = npy_as_f32(read_npy(test::data_path("tiny_kv_eq/text_short/logits_f32.npy")));
  auto bf16 = npy_as_f32(read_npy(test::data_path("tiny_kv_eq/text_short/logits_bf16w_f32.npy")));
  float d16 = 0, dbf = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    d16 = std::max(d16, std::fabs(f16[i] - ref[i]));
    dbf = std::max(dbf, std::fabs(bf16[i] - ref[i]));
  }
  EXPECT_LT(d16, dbf / 2) << "f16 " << d16 << " bf16 " << dbf;
  EXPECT_LT(d16, 0.05f);
}

}  // namespace
}  // namespace ug
