// The fixture case image_audio assembled for the decoder (two images of 60 and 63 patches and 33
// audio frames): HF's own preprocessing outputs (tests/data/preprocess) embedded by our embedders
// and pointed at by every placeholder token, in order. Shared by the CPU and CUDA parity tests.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "io/npy.h"
#include "model/embedders.h"
#include "model/loaded_model.h"
#include "test_util.h"

namespace ug::test {

inline ImagePatches load_patches(const std::string& name) {
  auto u8 = read_npy(test::data_path("preprocess/" + name + ".patches_u8.npy"));
  auto pos = npy_as_i64(read_npy(test::data_path("preprocess/" + name + ".positions.npy")));
  ImagePatches p;
  p.pixels = rescale_u8({reinterpret_cast<const uint8_t*>(u8.bytes.data()), u8.bytes.size()});
  for (size_t i = 0; i + 1 < pos.size(); i += 2) {
    p.xs.push_back(int32_t(pos[i]));
    p.ys.push_back(int32_t(pos[i + 1]));
  }
  return p;
}

struct Assembled {
  std::vector<int32_t> ids, block_ids;
  std::vector<float> image_features, audio_features;
  std::vector<const float*> rows;
  std::vector<int64_t> types;
};

// Embeds both images and the audio clip (with `embedder`; nullptr: the CPU embedders) and points every placeholder
// token at its feature row, in order.
inline Assembled assemble(const LoadedModel& m, MediaEmbedder* embedder = nullptr) {
  Assembled a;
  const std::string dir = "tiny_kv_eq/image_audio/";
  for (int64_t v : npy_as_i64(read_npy(test::data_path(dir + "input_ids.npy")))) a.ids.push_back(int32_t(v));
  a.types = npy_as_i64(read_npy(test::data_path(dir + "mm_token_type_ids.npy")));
  auto cpu = make_cpu_media_embedder(m.config, *m.weights, ThreadPool::global());
  MediaEmbedder& e = embedder ? *embedder : *cpu;
  for (const char* name : {"gradient.png.70", "noise.jpg.70"}) {
    auto f = e.image(load_patches(name));
    a.image_features.insert(a.image_features.end(), f.begin(), f.end());
  }
  auto frames = npy_as_f32(read_npy(test::data_path("preprocess/tone_16k.frames.npy")));
  a.audio_features = e.audio(frames);
  const int64_t D = m.config.text.hidden_size;
  size_t next_image = 0, next_audio = 0;
  for (int32_t id : a.ids) {
    if (id == m.config.tokens.image) {
      a.rows.push_back(a.image_features.data() + next_image++ * size_t(D));
    } else if (id == m.config.tokens.audio) {
      a.rows.push_back(a.audio_features.data() + next_audio++ * size_t(D));
    } else {
      a.rows.push_back(nullptr);
    }
  }
  EXPECT_EQ(next_image * size_t(D), a.image_features.size());
  EXPECT_EQ(next_audio * size_t(D), a.audio_features.size());
  a.block_ids = block_ids_for(a.ids, m.config.tokens);
  return a;
}

}  // namespace ug::test
