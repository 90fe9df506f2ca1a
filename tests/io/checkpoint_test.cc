// Checkpoint folders: the tiny HF fixtures, sharded write -> load, and the index/shard errors.
#include "io/checkpoint.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/bf16.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "io/safetensors_writer.h"
#include "test_util.h"

namespace ug {
namespace {

const char* kEmbed = "model.language_model.embed_tokens.weight";

void expect_error(const std::function<void()>& fn, const std::vector<std::string>& fragments) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected: " << fragments[0];
  } catch (const Error& e) {
    for (const auto& f : fragments)
      EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
  }
}

// Facts from the fixture manifest (fixtures/gemma4u/manifest.json).
void check_tiny_fixture(const Checkpoint& ck, DType dtype) {
  auto names = ck.names();
  EXPECT_EQ(names.size(), 95u);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  const std::map<std::string, std::vector<int64_t>> facts = {
      {kEmbed, {1024, 64}},
      {"model.language_model.norm.weight", {64}},
      {"model.language_model.layers.0.self_attn.k_proj.weight", {32, 64}},
      {"model.language_model.layers.0.self_attn.v_proj.weight", {32, 64}},
      {"model.language_model.layers.2.self_attn.q_proj.weight", {128, 64}},
      {"model.language_model.layers.2.self_attn.k_proj.weight", {32, 64}},
      {"model.language_model.layers.2.self_attn.o_proj.weight", {64, 128}},
      {"model.language_model.layers.2.layer_scalar", {1}},
      {"model.vision_embedder.pos_embedding", {64, 2, 48}},
      {"model.embed_vision.embedding_projection.weight", {64, 48}},
      {"model.embed_audio.embedding_projection.weight", {64, 640}},
  };
  for (const auto& [name, shape] : facts) {
    const TensorInfo& t = ck.get(name);
    EXPECT_EQ(t.shape, shape) << name;
    EXPECT_EQ(t.dtype, dtype) << name;
    EXPECT_EQ(t.nbytes, size_t(t.numel()) * dtype_size(dtype)) << name;
  }
  EXPECT_EQ(ck.find("model.language_model.layers.2.self_attn.v_proj.weight"), nullptr);  // k_eq_v
  size_t sum = 0;
  for (const auto& n : names) sum += ck.get(n).nbytes;
  EXPECT_EQ(ck.total_bytes(), sum);
}

TEST(Checkpoint, LoadsF32Fixture) {
  Checkpoint ck(test::data_path("tiny_kv_eq/model-f32"));
  check_tiny_fixture(ck, DType::F32);
  float v[2];
  std::memcpy(v, ck.get(kEmbed).data, sizeof v);
  EXPECT_FLOAT_EQ(v[0], -0.2322322428226471f);
  EXPECT_FLOAT_EQ(v[1], -0.8701348304748535f);
  ck.prefetch();
}

TEST(Checkpoint, LoadsBf16FixtureMatchingF32Rounded) {
  Checkpoint bf(test::data_path("tiny_kv_eq/model-bf16"));
  check_tiny_fixture(bf, DType::BF16);
  Checkpoint f32(test::data_path("tiny_kv_eq/model-f32"));
  const TensorInfo &a = f32.get(kEmbed), &b = bf.get(kEmbed);
  for (int64_t i = 0; i < a.numel(); ++i) {
    float x;
    uint16_t h;
    std::memcpy(&x, a.data + 4 * i, 4);
    std::memcpy(&h, b.data + 2 * i, 2);
    ASSERT_EQ(f32_to_bf16(x), h) << i;
  }
}

TEST(Checkpoint, MissingTensorIsLocated) {
  const std::string dir = test::data_path("tiny_kv_eq/model-f32");
  Checkpoint ck(dir);
  expect_error([&] { ck.get("model.language_model.layers.2.self_attn.v_proj.weight"); },
               {dir, "tensor 'model.language_model.layers.2.self_attn.v_proj.weight' not found",
                "layers.2.self_attn.q_proj.weight"});
}

TEST(Checkpoint, AcceptsAFilePathAndALoneSafetensors) {
  test::TempDir dir;
  std::filesystem::copy_file(test::data_path("tiny_kv_eq/model-bf16/model.safetensors"),
                             dir.file("weights.safetensors"));
  EXPECT_EQ(Checkpoint(dir.path()).names().size(), 95u);
  EXPECT_EQ(Checkpoint(dir.file("weights.safetensors")).names().size(), 95u);
  std::filesystem::copy_file(dir.file("weights.safetensors"), dir.file("other.safetensors"));
  expect_error([&] { Checkpoint c(dir.path()); }, {dir.path(), "2 *.safetensors files"});
}

TEST(Checkpoint, EmptyOrMissingFolder) {
  test::TempDir dir;
  expect_error([&] { Checkpoint c(dir.path()); }, {dir.path(), "no model.safetensors"});
  expect_error([&] { Checkpoint c(dir.file("nope")); }, {dir.file("nope"), "does not exist"});
}

// Tensors whose bytes are a function of (tensor index, byte offset), for checking after a load.
std::byte expected_byte(size_t tensor, size_t off) {
  return std::byte((tensor * 37 + off * 11) & 0xff);
}

std::vector<TensorToWrite> synthetic_tensors(int count) {
  std::vector<TensorToWrite> ts;
  for (int i = 0; i < count; ++i) {
    DType dt = i % 3 == 0 ? DType::F32 : i % 3 == 1 ? DType::BF16 : DType::U8;
    ts.push_back(
        {fmt::format("layers.{}.w", i), dt, {i + 1, 10}, [i](size_t off, std::span<std::byte> out) {
           for (size_t k = 0; k < out.size(); ++k) out[k] = expected_byte(i, off + k);
         }});
  }
  return ts;
}

TEST(Checkpoint, ShardedWriteThenLoad) {
  test::TempDir dir;
  auto ts = synthetic_tensors(9);
  auto paths = write_sharded_checkpoint(dir.path(), ts, 200);
  ASSERT_GT(paths.size(), 2u);
  const size_t shards = paths.size() - 1;
  EXPECT_EQ(paths.back(), dir.file("model.safetensors.index.json"));
  EXPECT_EQ(paths[0], dir.file(fmt::format("model-00001-of-{:05d}.safetensors", shards)));
  EXPECT_FALSE(std::filesystem::exists(dir.file("model.safetensors")));

  auto index = nlohmann::json::parse(read_text_file(paths.back()));
  size_t total = 0;
  for (int i = 0; i < 9; ++i) total += size_t(i + 1) * 10 * dtype_size(ts[i].dtype);
  EXPECT_EQ(index["metadata"]["total_size"].get<size_t>(), total);
  EXPECT_EQ(index["weight_map"].size(), 9u);

  Checkpoint ck(dir.path());
  EXPECT_EQ(ck.files().size(), shards);
  EXPECT_EQ(ck.total_bytes(), total);
  EXPECT_EQ(ck.names().size(), 9u);
  for (int i = 0; i < 9; ++i) {
    const TensorInfo& t = ck.get(ts[i].name);
    EXPECT_EQ(t.shape, ts[i].shape);
    EXPECT_EQ(t.dtype, ts[i].dtype);
    EXPECT_EQ(std::filesystem::path(t.file).filename().string(),
              index["weight_map"][ts[i].name].get<std::string>());
    for (size_t k = 0; k < t.nbytes; ++k) ASSERT_EQ(t.data[k], expected_byte(i, k)) << t.name;
  }
  for (const auto& f : ck.files()) EXPECT_EQ(f->metadata().at("format"), "pt");

  // Rewriting small enough for one file replaces the index layout.
  auto single = write_sharded_checkpoint(dir.path(), synthetic_tensors(2));
  ASSERT_EQ(single, std::vector<std::string>{dir.file("model.safetensors")});
  EXPECT_FALSE(std::filesystem::exists(dir.file("model.safetensors.index.json")));
  EXPECT_EQ(Checkpoint(dir.path()).names().size(), 2u);
}

TEST(Checkpoint, OversizedTensorGetsItsOwnShard) {
  test::TempDir dir;
  auto paths = write_sharded_checkpoint(dir.path(), synthetic_tensors(3), 10);
  EXPECT_EQ(paths.size(), 4u);  // 3 shards + index
  EXPECT_EQ(Checkpoint(dir.path()).names().size(), 3u);
}

TEST(Checkpoint, IndexErrors) {
  test::TempDir dir;
  auto paths = write_sharded_checkpoint(dir.path(), synthetic_tensors(6), 100);
  const std::string index = dir.file("model.safetensors.index.json");
  auto j = nlohmann::json::parse(read_text_file(index));
  const std::string shard1 = std::filesystem::path(paths[0]).filename().string();
  const std::string shard2 = std::filesystem::path(paths[1]).filename().string();

  auto with_map = [&](const std::function<void(nlohmann::json&)>& edit) {
    auto k = j;
    edit(k["weight_map"]);
    test::write_file(index, k.dump());
  };
  with_map([](nlohmann::json& m) { m["layers.0.w"] = "model-00009-of-00009.safetensors"; });
  expect_error([&] { Checkpoint c(dir.path()); },
               {index, "shard 'model-00009-of-00009.safetensors'", "missing"});

  with_map([](nlohmann::json& m) { m["ghost.weight"] = m["layers.0.w"]; });
  expect_error([&] { Checkpoint c(dir.path()); },
               {index, "tensor 'ghost.weight'", shard1, "does not contain it"});

  with_map([&](nlohmann::json& m) { m["layers.0.w"] = shard2; });
  expect_error([&] { Checkpoint c(dir.path()); }, {index, "tensor 'layers.0.w'", "found in"});

  test::write_file(index, "{\"weight_map\": 3}");
  expect_error([&] { Checkpoint c(dir.path()); }, {index, "'weight_map'"});
  test::write_file(index, "{not json");
  expect_error([&] { Checkpoint c(dir.path()); }, {index, "not valid JSON"});
}

TEST(Checkpoint, SameTensorInTwoShards) {
  test::TempDir dir;
  auto ts = synthetic_tensors(2);
  write_safetensors(dir.file("a.safetensors"), ts);
  write_safetensors(dir.file("b.safetensors"), {ts[1]});
  test::write_file(
      dir.file("model.safetensors.index.json"),
      R"({"weight_map": {"layers.0.w": "a.safetensors", "layers.1.w": "a.safetensors",)"
      R"( "x": "b.safetensors"}})");
  expect_error(
      [&] { Checkpoint c(dir.path()); },
      {dir.path(), "tensor 'layers.1.w' is defined in both", "a.safetensors", "b.safetensors"});
}

}  // namespace
}  // namespace ug
