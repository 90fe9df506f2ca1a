// config.json / generation_config.json parsing and checkpoint-vs-config validation: every bad input is a
// located ug::Error.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/bf16.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "io/safetensors_writer.h"
#include "model/config.h"
#include "model/loaded_model.h"
#include "test_util.h"

namespace ug {
namespace {

nlohmann::json fixture_config() {
  return nlohmann::json::parse(read_text_file(test::data_path("tiny_kv_eq/model-f32/config.json")));
}

// Expects parse to fail with a message containing every fragment.
void expect_config_error(const nlohmann::json& cfg, std::initializer_list<std::string> fragments) {
  try {
    parse_model_config(cfg.dump(), "cfg.json");
    ADD_FAILURE() << "no error for " << cfg.dump().substr(0, 200);
  } catch (const Error& e) {
    std::string msg = e.what();
    for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << msg << " lacks " << f;
  }
}

TEST(ModelConfig, ParsesFixture) {
  auto c = parse_model_config(fixture_config().dump(), "cfg.json");
  EXPECT_EQ(c.text.n_layers(), 6);
  EXPECT_EQ(c.text.layers[2].kind, LayerKind::Full);
  EXPECT_EQ(c.text.layers[2].head_dim, 32);
  EXPECT_EQ(c.text.layers[2].n_kv_heads, 1);
  EXPECT_FALSE(c.text.layers[2].has_v_proj);
  EXPECT_TRUE(c.text.layers[0].has_v_proj);
  EXPECT_EQ(c.text.layers[0].head_dim, 16);
  EXPECT_EQ(c.text.layers[2].rope.type, RopeType::Proportional);
  EXPECT_DOUBLE_EQ(c.text.layers[2].rope.partial_rotary_factor, 0.25);
  EXPECT_EQ(c.tokens.boi, 1000);
  EXPECT_EQ(c.tokens.eoa, 1005);
  ASSERT_TRUE(c.vision.has_value());
  EXPECT_EQ(c.vision->patch_values(), 6912);
}

// The published google/gemma-4-12B text_config shape (spec §1.2) in its flat form.
TEST(ModelConfig, Real12BFlatForm) {
  nlohmann::json text = {{"vocab_size", 262144}, {"hidden_size", 3840}, {"intermediate_size", 15360},
                         {"num_hidden_layers", 48}, {"num_attention_heads", 16}, {"num_key_value_heads", 8},
                         {"head_dim", 256}, {"global_head_dim", 512}, {"num_global_key_value_heads", 1},
                         {"attention_k_eq_v", true}, {"sliding_window", 1024}, {"final_logit_softcapping", 30.0},
                         {"vocab_size_per_layer_input", 262144}, {"hidden_size_per_layer_input", 0},
                         {"enable_moe_block", false}, {"num_experts", nullptr}};
  text["rope_parameters"] = {{"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 10000.0}}},
                             {"full_attention",
                              {{"rope_type", "proportional"}, {"partial_rotary_factor", 0.25}, {"rope_theta", 1e6}}}};
  nlohmann::json cfg = {{"model_type", "gemma4_unified"}, {"text_config", text}, {"eos_token_id", {1, 106}}};
  auto c = parse_model_config(cfg.dump(), "12b.json");
  ASSERT_EQ(c.text.n_layers(), 48);
  int full = 0;
  for (int i = 0; i < 48; ++i) {
    const auto& l = c.text.layers[size_t(i)];
    bool is_full = (i + 1) % 6 == 0;
    EXPECT_EQ(l.kind == LayerKind::Full, is_full) << i;
    EXPECT_EQ(l.head_dim, is_full ? 512 : 256);
    EXPECT_EQ(l.n_kv_heads, is_full ? 1 : 8);
    EXPECT_EQ(l.has_v_proj, !is_full);
    full += is_full;
  }
  EXPECT_EQ(full, 8);
  EXPECT_EQ(c.text.eos_token_ids, (std::vector<int64_t>{1, 106}));
  EXPECT_EQ(c.tokens.image, 258880);  // defaults when absent
}

TEST(ModelConfig, LocatedErrors) {
  auto c = fixture_config();
  c["text_config"]["hidden_size"] = "wide";
  expect_config_error(c, {"cfg.json", "text_config.hidden_size", "integer", "string"});
  c = fixture_config();
  c["text_config"]["layer_types"].erase(0);
  expect_config_error(c, {"layer_types", "5 entries", "6"});
  c = fixture_config();
  c["text_config"]["layer_types"][1] = "chunked_attention";
  expect_config_error(c, {"layer_types", "chunked_attention"});
  c = fixture_config();
  c["text_config"]["rope_parameters"]["full_attention"]["rope_type"] = "yarn";
  expect_config_error(c, {"rope_type", "yarn"});
  c = fixture_config();
  c["text_config"]["num_attention_heads"] = 3;  // not divisible by 2 kv heads
  expect_config_error(c, {"kv heads", "num_attention_heads 3"});
  c = fixture_config();
  c["text_config"]["head_dim"] = -4;
  expect_config_error(c, {"head_dim"});
  c = fixture_config();
  c["model_type"] = "llama";
  expect_config_error(c, {"model_type", "llama"});
  c = fixture_config();
  c.erase("text_config");
  expect_config_error(c, {"text_config", "missing"});
  EXPECT_THROW(parse_model_config("{\"text_config\": ", "bad.json"), Error);
  EXPECT_THROW(parse_model_config("[1, 2]", "bad.json"), Error);
}

TEST(GenerationConfig, ReadsStopsAndSuppression) {
  auto model = parse_model_config(fixture_config().dump(), "cfg.json");
  auto g = parse_generation_config(
      R"({"eos_token_id": [1, 106], "suppress_tokens": [1005, 1001], "do_sample": true, "top_k": 64, "top_p": 0.95})",
      "gen.json", model);
  EXPECT_EQ(g.eos_token_ids, (std::vector<int64_t>{1, 106}));
  EXPECT_EQ(g.suppress_tokens, (std::vector<int64_t>{1005, 1001}));
  EXPECT_TRUE(g.do_sample);
  EXPECT_EQ(g.top_k, 64);
  EXPECT_THROW(parse_generation_config(R"({"eos_token_id": 5000})", "gen.json", model), Error);
  EXPECT_THROW(parse_generation_config(R"({"top_k": "many"})", "gen.json", model), Error);
}

// Writes the fixture config plus a checkpoint made of `tensors` into dir.
void write_model(const test::TempDir& dir, const std::vector<ExpectedTensor>& tensors, DType dtype = DType::F32) {
  test::write_file(dir.file("config.json"), fixture_config().dump());
  std::vector<TensorToWrite> out;
  for (const auto& t : tensors)
    out.push_back({t.name, dtype, t.shape, [](size_t, std::span<std::byte> b) {
                     for (auto& x : b) x = std::byte{0};
                   }});
  write_safetensors(dir.file("model.safetensors"), out);
}

void expect_load_error(const test::TempDir& dir, std::initializer_list<std::string> fragments) {
  try {
    auto model = load_model(dir.path(), {.warn_unused = false});
    ADD_FAILURE() << "no error, loaded " << model->dir;
  } catch (const Error& e) {
    std::string msg = e.what();
    for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << msg << " lacks " << f;
  }
}

TEST(Weights, MissingWrongShapeAndWrongDtypeAreLocated) {
  auto cfg = parse_model_config(fixture_config().dump(), "cfg.json");
  auto expected = expected_tensors(cfg);
  {
    test::TempDir d;
    write_model(d, expected);
    EXPECT_NO_THROW(load_model(d.path(), {.warn_unused = false}));
  }
  {
    test::TempDir d;
    auto t = expected;
    t.erase(t.begin() + 5);  // a layer-0 tensor
    write_model(d, t);
    expect_load_error(d, {"not found", expected[5].name});
  }
  {
    test::TempDir d;
    auto t = expected;
    for (auto& e : t)
      if (e.name.find("layers.2.self_attn.k_proj") != std::string::npos) e.shape = {64, 64};
    write_model(d, t);
    expect_load_error(d, {"layers.2.self_attn.k_proj.weight", "[64, 64]", "[32, 64]"});
  }
  {
    test::TempDir d;
    write_model(d, expected, DType::I32);
    expect_load_error(d, {"dtype", "I32"});
  }
}

}  // namespace
}  // namespace ug
