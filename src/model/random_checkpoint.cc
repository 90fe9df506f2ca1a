#include "model/random_checkpoint.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include "core/bf16.h"
#include "core/error.h"
#include "io/safetensors_writer.h"
#include "model/config.h"
#include "model/weights.h"

namespace ug {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform in [-1, 1) from a 64-bit hash.
float unit(uint64_t h) { return float(int64_t(h >> 40) - (int64_t(1) << 23)) / float(1 << 23); }

struct Distribution {
  float center, half_width;
};

// Norm scales and layer_scalar around 1 (randomised so a `w` vs `1+w` bug would show), biases small,
// matrices with the HF initializer's spread (std 0.02).
Distribution distribution_for(const std::string& name) {
  auto ends_with = [&](const char* s) {
    size_t n = std::strlen(s);
    return name.size() >= n && name.compare(name.size() - n, n, s) == 0;
  };
  if (ends_with("norm.weight") || ends_with("layer_scalar") || ends_with("_ln1.weight") || ends_with("_ln2.weight"))
    return {1.0f, 0.1f};
  if (ends_with(".bias")) return {0.0f, 0.05f};
  return {0.0f, 0.02f * 1.7320508f};
}

void write_json(const std::string& path, const nlohmann::json& j) {
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  UG_CHECK(out.good(), "{}: write failed", path);
}

}  // namespace

size_t write_random_checkpoint(const std::string& dir, const nlohmann::json& config,
                               const nlohmann::json& generation_config, const RandomCheckpointOptions& options,
                               ThreadPool& pool) {
  UG_CHECK(options.dtype == DType::BF16 || options.dtype == DType::F32, "init-random: dtype must be BF16 or F32");
  ModelConfig parsed = parse_model_config(config.dump(), "preset config");  // validates the shape first
  std::filesystem::create_directories(dir);
  write_json(dir + "/config.json", config);
  write_json(dir + "/generation_config.json", generation_config);

  const size_t esize = dtype_size(options.dtype);
  std::vector<TensorToWrite> tensors;
  size_t total = 0;
  for (const auto& t : expected_tensors(parsed)) {
    uint64_t key = splitmix64(options.seed ^ std::hash<std::string>{}(t.name));
    Distribution dist = distribution_for(t.name);
    DType dtype = options.dtype;
    int64_t numel = 1;
    for (auto s : t.shape) numel *= s;
    total += size_t(numel) * esize;
    tensors.push_back({t.name, dtype, t.shape, [=, &pool](size_t offset, std::span<std::byte> out) {
                         const int64_t first = int64_t(offset / esize), count = int64_t(out.size() / esize);
                         pool.parallel_for(count, 1 << 16, [&](int64_t b, int64_t e) {
                           for (int64_t i = b; i < e; ++i) {
                             float v = dist.center + dist.half_width * unit(splitmix64(key + uint64_t(first + i)));
                             if (dtype == DType::BF16) {
                               uint16_t h = f32_to_bf16(v);
                               std::memcpy(out.data() + size_t(i) * 2, &h, 2);
                             } else {
                               std::memcpy(out.data() + size_t(i) * 4, &v, 4);
                             }
                           }
                         });
                       }});
  }
  write_sharded_checkpoint(dir, tensors, options.max_shard_bytes);
  return total;
}

}  // namespace ug
