#include "cli_util.h"

#include <charconv>
#include <limits>

#include "core/error.h"
#include "io/npy.h"

namespace ug::cli {

std::vector<int32_t> parse_token_list(const std::string& spec) {
  std::vector<int32_t> ids;
  if (spec.size() > 4 && spec.substr(spec.size() - 4) == ".npy") {
    for (int64_t v : npy_as_i64(read_npy(spec))) {
      UG_CHECK(v >= 0 && v <= std::numeric_limits<int32_t>::max(), "{}: token id {} out of range", spec, v);
      ids.push_back(int32_t(v));
    }
    return ids;
  }
  size_t pos = 0;
  while (pos <= spec.size()) {
    size_t comma = spec.find(',', pos);
    if (comma == std::string::npos) comma = spec.size();
    std::string item = spec.substr(pos, comma - pos);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    int64_t v = 0;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    UG_CHECK(!item.empty() && ec == std::errc() && end == item.data() + item.size() && v >= 0 &&
                 v <= std::numeric_limits<int32_t>::max(),
             "--tokens: '{}' is not a token id (expected FILE.npy or comma-separated non-negative integers)", item);
    ids.push_back(int32_t(v));
    pos = comma + 1;
  }
  return ids;
}

std::optional<DType> parse_weight_dtype(const std::string& name) {
  if (name.empty()) return std::nullopt;
  if (name == "f32") return DType::F32;
  if (name == "bf16") return DType::BF16;
  fail("--dtype: expected f32 or bf16, got '{}'", name);
}

}  // namespace ug::cli

namespace ug::cli {

DeviceSpec DeviceArgs::spec() const {
  DeviceSpec d = parse_device(device);
  UG_CHECK(precision == "faithful" || precision == "balanced" || precision == "fast",
           "--precision: '{}' is not faithful, balanced or fast", precision);
  d.precision = precision;
  // bf16 names what auto means on CUDA with balanced / fast; fp8_e4m3 is fp8's full name (as vLLM spells it).
  UG_CHECK(kv_cache == "auto" || kv_cache == "bf16" || kv_cache == "fp8" || kv_cache == "fp8_e4m3",
           "--kv-cache-dtype: '{}' is not auto, bf16 or fp8", kv_cache);
  UG_CHECK(kv_cache == "auto" || d.kind == DeviceSpec::Kind::Cuda,
           "--kv-cache-dtype {}: the CPU backend keeps an f32 KV cache; {} needs --device cuda", kv_cache, kv_cache);
  UG_CHECK(kv_cache == "auto" || precision != "faithful",
           "--kv-cache-dtype {} does not go with --precision faithful (f32 KV); use balanced or fast", kv_cache);
  d.kv_cache = kv_cache == "bf16" ? "auto" : kv_cache == "fp8_e4m3" ? "fp8" : kv_cache;
  return d;
}

void add_device_options(CLI::App& sub, DeviceArgs& args) {
  sub.add_option("--device", args.device, "Where the decoder runs: cpu (default), cuda or cuda:N");
  sub.add_option("--precision", args.precision,
                 "CUDA numerics: balanced (default: bf16 KV cache, f32-faithful decode matmuls), faithful (f32 KV and "
                 "f32-faithful matmuls: matches the f32 reference), fast (bf16 activations like HF's bf16 model)");
  sub.add_option("--kv-cache-dtype", args.kv_cache,
                 "KV cache element type: auto (default: bf16, f32 with --precision faithful), bf16 (CUDA) or fp8 "
                 "(also fp8_e4m3; CUDA: half the memory of bf16 and faster batched decode; 3 mantissa bits per key and "
                 "value)");
}

}  // namespace ug::cli
