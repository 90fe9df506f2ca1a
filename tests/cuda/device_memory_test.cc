// The stream-ordered pool behind KV caches (backend/cuda/device_memory.h): freed memory stays in the pool, yet a
// cudaMalloc that needs it gets it; KV rows survive growing and cloning, which copy in stream order. Each test skips
// itself without a GPU (CI).
#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_buffer.h"
#include "core/error.h"
#include "model/config.h"
#include "model/presets.h"
#include "model_cuda/device_kv_storage.h"

namespace ug::cuda {
namespace {

class DeviceMemory : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!device_available()) GTEST_SKIP() << "no CUDA device (cudaGetDeviceCount failed or found none)";
  }
  static size_t free_bytes() {
    size_t free = 0, total = 0;
    UG_CUDA_CHECK(cudaMemGetInfo(&free, &total));
    return free;
  }
};

TEST_F(DeviceMemory, FreedPoolMemoryIsKeptAndGivenBackWhenCudaMallocNeedsIt) {
  const size_t free = free_bytes(), big = free / 10 * 6;
  {
    PooledBuffer<char> a(big);
    UG_CUDA_CHECK(cudaMemset(a.data(), 1, big));
  }
  UG_CUDA_CHECK(cudaDeviceSynchronize());
  // The pool kept the freed bytes: less than half of the memory is free now.
  EXPECT_LT(free_bytes(), free / 2);
  {
    PooledBuffer<char> again(big);  // served from the pool
    EXPECT_NE(again.data(), nullptr);
  }
  // Only fits once the pool gives its memory back.
  DeviceBuffer<char> plain(big);
  UG_CUDA_CHECK(cudaMemset(plain.data(), 2, big));
  UG_CUDA_CHECK(cudaDeviceSynchronize());
}

TEST_F(DeviceMemory, OutOfMemoryIsAnErrorNamingTheSize) {
  size_t free = 0, total = 0;
  UG_CUDA_CHECK(cudaMemGetInfo(&free, &total));
  try {
    PooledBuffer<char> too_big(total * 2);
    FAIL() << "allocated twice the device's memory";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cudaMallocAsync of " + std::to_string(total * 2) + " bytes"),
              std::string::npos)
        << e.what();
  }
  try {
    DeviceBuffer<char> too_big(total * 2);
    FAIL() << "allocated twice the device's memory";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cudaMalloc of"), std::string::npos) << e.what();
  }
  PooledBuffer<char> fine(1 << 20);  // nothing sticky left behind
  UG_CUDA_CHECK(cudaMemset(fine.data(), 0, 1 << 20));
  UG_CUDA_CHECK(cudaDeviceSynchronize());
}

// Rows written before a grow and a clone read back the same from both caches, with kernels (cudaMemset on the
// backend's kind of blocking stream) queued around the stream-ordered copies.
TEST_F(DeviceMemory, KvRowsSurviveGrowingAndCloning) {
  const ModelConfig model = parse_model_config(find_preset("tiny").config.dump(), "preset tiny");
  const TextConfig& cfg = model.text;
  DeviceKvStorage kv(cfg, /*ring_slack=*/4, /*device=*/0, KvType::Bf16);
  kv.reserve(3);
  cudaStream_t stream = nullptr;
  UG_CUDA_CHECK(cudaStreamCreate(&stream));
  std::vector<std::vector<uint16_t>> written;
  for (int64_t li = 0; li < int64_t(cfg.layers.size()); ++li) {
    const auto& l = cfg.layers[size_t(li)];
    std::vector<uint16_t> rows(size_t(3 * l.n_kv_heads * l.head_dim));
    std::iota(rows.begin(), rows.end(), uint16_t(li * 100));
    UG_CUDA_CHECK(cudaMemcpyAsync(kv.k(li), rows.data(), rows.size() * 2, cudaMemcpyHostToDevice, stream));
    UG_CUDA_CHECK(cudaStreamSynchronize(stream));
    written.push_back(rows);
  }
  kv.grow(40);  // full layers and rings move to larger buffers
  auto copy = kv.clone();
  auto& clone = static_cast<DeviceKvStorage&>(*copy);
  UG_CUDA_CHECK(cudaMemsetAsync(kv.v(0), 0, 2, stream));  // later work on the original's other buffer
  for (int64_t li = 0; li < int64_t(cfg.layers.size()); ++li) {
    for (DeviceKvStorage* s : {&kv, &clone}) {
      std::vector<uint16_t> back(written[size_t(li)].size());
      UG_CUDA_CHECK(cudaMemcpyAsync(back.data(), s->k(li), back.size() * 2, cudaMemcpyDeviceToHost, stream));
      UG_CUDA_CHECK(cudaStreamSynchronize(stream));
      EXPECT_EQ(back, written[size_t(li)]) << "layer " << li << (s == &kv ? " original" : " clone");
    }
  }
  EXPECT_EQ(clone.bytes(), kv.bytes());
  UG_CUDA_CHECK(cudaStreamDestroy(stream));
}

}  // namespace
}  // namespace ug::cuda
