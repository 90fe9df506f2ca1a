#include "model_cuda/cuda_media_embedder.h"

#include <algorithm>
#include <mutex>
#include <optional>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/ops.h"
#include "core/bf16.h"
#include "core/error.h"
#include "model_cuda/device_weights.h"

namespace ug {
namespace {

using cuda::DeviceBuffer;

constexpr double kLayerNormEps = 1e-5;  // torch.nn.LayerNorm's default, as model/embedders.cc

DeviceBuffer<float> upload_f32(const std::vector<float>& v) { return DeviceBuffer<float>(std::span<const float>(v)); }

// A small table used by row index (the vision position embedding), widened to f32 once.
DeviceBuffer<float> upload_table_f32(const MatrixRef& m, const char* what) {
  UG_CHECK(m.data != nullptr, "cuda embedders: {} is missing", what);
  UG_CHECK(m.dtype == DType::BF16 || m.dtype == DType::F32, "cuda embedders: {} has dtype {}; expected BF16 or F32",
           what, dtype_name(m.dtype));
  std::vector<float> host(size_t(m.rows * m.cols));
  for (size_t i = 0; i < host.size(); ++i)
    host[i] = m.dtype == DType::F32 ? static_cast<const float*>(m.data)[i]
                                    : bf16_to_f32(static_cast<const uint16_t*>(m.data)[i]);
  return upload_f32(host);
}

// Grows a device buffer to at least n elements (contents not kept).
template <typename T>
T* ensure(DeviceBuffer<T>& b, size_t n) {
  if (b.size() < n) b = DeviceBuffer<T>(n);
  return b.data();
}

class CudaMediaEmbedder final : public MediaEmbedder {
 public:
  CudaMediaEmbedder(const ModelConfig& config, const ModelWeights& weights, int device)
      : config_(config), weights_(weights), device_(device) {
    UG_CHECK(device >= 0, "cuda embedders: device {} must be >= 0", device);
    UG_CHECK(cuda::device_available(), "cuda embedders: no usable CUDA device");
    UG_CUDA_CHECK(cudaSetDevice(device));
    UG_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    gemm_ = std::make_unique<cuda::Gemm>();
    if (config.vision && weights.vision) {
      const VisionEmbedderWeights& w = *weights.vision;
      UG_CHECK(w.projection.cols == config.vision->mm_embed_dim,
               "cuda embedders: the vision projection takes {} inputs, the patch embedding has {}", w.projection.cols,
               config.vision->mm_embed_dim);
      vision_.emplace(Vision{.ln1_w = upload_f32(w.patch_ln1_w),
                             .ln1_b = upload_f32(w.patch_ln1_b),
                             .dense = cuda::upload_bf16(w.patch_dense, "model.embed_vision.patch_dense.weight"),
                             .dense_b = upload_f32(w.patch_dense_b),
                             .ln2_w = upload_f32(w.patch_ln2_w),
                             .ln2_b = upload_f32(w.patch_ln2_b),
                             .positions = upload_table_f32(w.pos_embedding, "model.embed_vision.pos_embedding"),
                             .pos_w = upload_f32(w.pos_norm_w),
                             .pos_b = upload_f32(w.pos_norm_b),
                             .projection = cuda::upload_bf16(w.projection, "model.embed_vision.embedding_projection")});
    }
    if (config.audio && weights.audio)
      audio_projection_ = cuda::upload_bf16(weights.audio->projection, "model.embed_audio.embedding_projection.weight");
  }
  ~CudaMediaEmbedder() override {
    if (stream_) cudaStreamDestroy(stream_);
  }

  std::vector<float> image(const ImagePatches& image) override {
    check_image_patches(config_, weights_, image);
    std::lock_guard lock(mutex_);
    UG_CUDA_CHECK(cudaSetDevice(device_));
    const VisionConfig& vc = *config_.vision;
    const Vision& w = *vision_;
    const int64_t n = image.count(), P = vc.patch_values(), E = vc.mm_embed_dim, D = config_.text.hidden_size;
    if (n == 0) return {};
    std::vector<int32_t> rows_x(static_cast<size_t>(n)),
        rows_y(static_cast<size_t>(n));  // table rows 2x (x axis) and 2y + 1 (y axis)
    for (int64_t i = 0; i < n; ++i) {
      rows_x[size_t(i)] = 2 * image.xs[size_t(i)];
      rows_y[size_t(i)] = 2 * image.ys[size_t(i)] + 1;
    }
    float* pixels = ensure(in_, size_t(n * P));
    float* a = ensure(a_, size_t(n * std::max({P, E, D})));  // LN1 [n, P], then LN2 [n, E], then the rows [n, D]
    float* b = ensure(b_, size_t(n * E));
    int32_t* rx = ensure(rows_x_, size_t(n));
    int32_t* ry = ensure(rows_y_, size_t(n));
    copy_up(pixels, image.pixels.data(), image.pixels.size());
    copy_up(rx, rows_x.data(), rows_x.size());
    copy_up(ry, rows_y.data(), rows_y.size());
    cuda::layer_norm({.x = pixels,
                      .out = a,
                      .weight = w.ln1_w.data(),
                      .bias = w.ln1_b.data(),
                      .rows = n,
                      .dim = P,
                      .eps = kLayerNormEps},
                     stream_);
    matmul(w.dense.data(), E, P, a, n, b);  // shapes checked against the config at load (model/weights.cc)
    cuda::layer_norm({.x = b,
                      .out = a,
                      .weight = w.ln2_w.data(),
                      .bias = w.ln2_b.data(),
                      .add = w.dense_b.data(),
                      .rows = n,
                      .dim = E,
                      .eps = kLayerNormEps},
                     stream_);
    cuda::layer_norm({.x = a,
                      .out = b,
                      .weight = w.pos_w.data(),
                      .bias = w.pos_b.data(),
                      .table = w.positions.data(),
                      .table_rows_a = rx,
                      .table_rows_b = ry,
                      .rows = n,
                      .dim = E,
                      .eps = kLayerNormEps},
                     stream_);
    cuda::rms_norm({.x = b, .out = b, .rows = n, .dim = E, .eps = vc.rms_norm_eps}, stream_);
    matmul(w.projection.data(), D, E, b, n, a);
    return copy_down(a, size_t(n * D));
  }

  std::vector<float> audio(std::span<const float> frames) override {
    const int64_t n = check_audio_frames(config_, weights_, frames);
    std::lock_guard lock(mutex_);
    UG_CUDA_CHECK(cudaSetDevice(device_));
    const int64_t F = config_.audio->audio_embed_dim, D = config_.text.hidden_size;
    if (n == 0) return {};
    float* x = ensure(in_, size_t(n * F));
    float* out = ensure(a_, size_t(n * D));
    copy_up(x, frames.data(), frames.size());
    cuda::rms_norm({.x = x, .out = x, .rows = n, .dim = F, .eps = config_.audio->rms_norm_eps}, stream_);
    matmul(audio_projection_.data(), D, F, x, n, out);
    return copy_down(out, size_t(n * D));
  }

 private:
  struct Vision {
    DeviceBuffer<float> ln1_w, ln1_b;
    DeviceBuffer<uint16_t> dense;  // [E, P]
    DeviceBuffer<float> dense_b, ln2_w, ln2_b;
    DeviceBuffer<float> positions;  // [posemb * 2, E]
    DeviceBuffer<float> pos_w, pos_b;
    DeviceBuffer<uint16_t> projection;  // [D, E]
  };

  // y[rows, out] = x[rows, in] . W^T, W [out, in] bf16; f32-faithful (two-term split activations).
  void matmul(const uint16_t* w, int64_t out, int64_t in, const float* x, int64_t rows, float* y) {
    gemm_->run_f32({.w = w, .x = x, .y = y, .m = rows, .n = out, .k = in, .split = true}, stream_);
  }
  template <typename T>
  void copy_up(T* dst, const T* src, size_t n) {
    UG_CUDA_CHECK(cudaMemcpyAsync(dst, src, n * sizeof(T), cudaMemcpyHostToDevice, stream_));
  }
  std::vector<float> copy_down(const float* src, size_t n) {
    std::vector<float> out(n);
    UG_CUDA_CHECK(cudaMemcpyAsync(out.data(), src, n * sizeof(float), cudaMemcpyDeviceToHost, stream_));
    UG_CUDA_CHECK(cudaStreamSynchronize(stream_));  // also the uploads above, whose host memory goes away
    return out;
  }

  const ModelConfig& config_;
  const ModelWeights& weights_;
  int device_;
  std::mutex mutex_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<cuda::Gemm> gemm_;
  std::optional<Vision> vision_;
  DeviceBuffer<uint16_t> audio_projection_;  // [D, F]
  DeviceBuffer<float> in_, a_, b_;
  DeviceBuffer<int32_t> rows_x_, rows_y_;
};

}  // namespace

std::unique_ptr<MediaEmbedder> make_cuda_media_embedder(const ModelConfig& config, const ModelWeights& weights,
                                                        int device) {
  return std::make_unique<CudaMediaEmbedder>(config, weights, device);
}

}  // namespace ug
