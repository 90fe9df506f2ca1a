// Helpers shared by the CLI subcommands: parsing token lists, opening a model.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "runtime/decoder_factory.h"

namespace ug::cli {

// "FILE.npy" (integer array) or "ID,ID,..." -> ids.
std::vector<int32_t> parse_token_list(const std::string& spec);
// "f32" | "bf16" | "" (as stored) -> the weight precision to run at.
std::optional<DType> parse_weight_dtype(const std::string& name);

// --device, --precision and --kv-cache-dtype, shared by run / serve / logits / bench.
struct DeviceArgs {
  std::string device = "cpu";
  std::string precision = DeviceSpec{}.precision;
  std::string kv_cache = DeviceSpec{}.kv_cache;
  DeviceSpec spec() const;  // errors name the bad value
};
void add_device_options(CLI::App& sub, DeviceArgs& args);

}  // namespace ug::cli
