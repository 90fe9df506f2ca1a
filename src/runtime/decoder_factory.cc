#include "runtime/decoder_factory.h"

#include "core/error.h"
#if UG_HAVE_CUDA
#include "model_cuda/cuda_decoder_backend.h"
#include "model_cuda/cuda_media_embedder.h"
#endif

namespace ug {

DeviceSpec parse_device(const std::string& text) {
  if (text == "cpu") return {};
  if (text == "cuda") return {.kind = DeviceSpec::Kind::Cuda};
  if (text.rfind("cuda:", 0) == 0 && text.size() > 5 && text.size() < 9 &&
      text.find_first_not_of("0123456789", 5) == std::string::npos)
    return {.kind = DeviceSpec::Kind::Cuda, .ordinal = std::stoi(text.substr(5))};
  fail("--device: '{}' is not a device (expected cpu, cuda or cuda:N)", text);
}

std::string to_string(const DeviceSpec& d) {
  return d.kind == DeviceSpec::Kind::Cpu ? "cpu" : "cuda:" + std::to_string(d.ordinal);
}

bool built_with_cuda() {
#if UG_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Decoder> make_decoder(const DeviceSpec& device, const ModelConfig& config, const ModelWeights& weights,
                                      ThreadPool& pool, DecoderOptions options) {
  UG_CHECK(device.kv_cache == "auto" || device.kv_cache == "fp8", "--kv-cache-dtype: '{}' is not auto or fp8",
           device.kv_cache);
  const bool fp8_kv = device.kv_cache == "fp8";
  UG_CHECK(!fp8_kv || device.kind == DeviceSpec::Kind::Cuda,
           "--kv-cache-dtype fp8: the CPU backend keeps an f32 KV cache; fp8 needs --device cuda");
  if (device.kind == DeviceSpec::Kind::Cpu) return std::make_unique<Decoder>(config, weights, pool, options);
#if UG_HAVE_CUDA
  MatmulPrecision precision = MatmulPrecision::Faithful;
  if (device.precision == "balanced")
    precision = MatmulPrecision::Balanced;
  else if (device.precision == "fast")
    precision = MatmulPrecision::Fast;
  else
    UG_CHECK(device.precision == "faithful", "--precision: '{}' is not faithful, balanced or fast", device.precision);
  return std::make_unique<Decoder>(
      config, weights,
      make_cuda_decoder_backend(config, weights, {.device = device.ordinal, .precision = precision, .fp8_kv = fp8_kv}),
      options);
#else
  fail("--device {}: this build has no CUDA backend (configure with -DUNIGEMMA_CUDA=ON)", to_string(device));
#endif
}

std::unique_ptr<MediaEmbedder> make_media_embedder(const DeviceSpec& device, const ModelConfig& config,
                                                   const ModelWeights& weights, ThreadPool& pool) {
  if (device.kind == DeviceSpec::Kind::Cpu) return make_cpu_media_embedder(config, weights, pool);
#if UG_HAVE_CUDA
  return make_cuda_media_embedder(config, weights, device.ordinal);
#else
  fail("--device {}: this build has no CUDA backend (configure with -DUNIGEMMA_CUDA=ON)", to_string(device));
#endif
}

}  // namespace ug
