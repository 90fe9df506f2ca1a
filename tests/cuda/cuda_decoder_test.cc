// The whole decoder on the CUDA backend vs HF (fixtures, bf16 weights: the tolerances of issue 4)
// and vs the CPU backend: text logits, multimodal logits at text positions, greedy decode ids,
// batched steps with sequences of different lengths, KV cache clones and truncation. Skips without
// a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <initializer_list>

#include "backend/cuda/cuda_check.h"
#include "core/thread_pool.h"
#include "io/npy.h"
#include "model/decoder.h"
#include "model/image_audio_fixture.h"
#include "model/loaded_model.h"
#include "model/presets.h"
#include "model/random_checkpoint.h"
#include "model_cuda/cuda_decoder_backend.h"
#include "model_cuda/cuda_media_embedder.h"
#include "test_util.h"

namespace ug {
namespace {

class CudaDecoder : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda::device_available()) GTEST_SKIP() << "no CUDA device";
  }
  static std::unique_ptr<LoadedModel> model() {
    return load_model(test::data_path("tiny_kv_eq/model-bf16"), {.weight_dtype = DType::BF16});
  }
  static std::unique_ptr<Decoder> cuda_decoder(const LoadedModel& m, int64_t chunk = 256,
                                               MatmulPrecision precision = MatmulPrecision::Faithful,
                                               bool graphs = true, bool fp8_kv = false) {
    return std::make_unique<Decoder>(
        m.config, *m.weights,
        make_cuda_decoder_backend(m.config, *m.weights, {.precision = precision, .graphs = graphs, .fp8_kv = fp8_kv}),
        DecoderOptions{.max_chunk = chunk});
  }
  // The largest |logit - HF| at the text positions of the fixture's image + audio prompt, embedded as `a` holds it.
  static float image_audio_text_error(const LoadedModel& m, const test::Assembled& a, int64_t chunk);
};

std::vector<int32_t> load_ids(const std::string& rel) {
  std::vector<int32_t> ids;
  for (int64_t v : npy_as_i64(read_npy(test::data_path(rel)))) ids.push_back(int32_t(v));
  return ids;
}

float max_abs_diff(std::span<const float> a, std::span<const float> b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

// HF bf16 weights, f32 compute (logits_bf16w_f32) <= 5e-2 at text positions (issue 4) for the
// faithful precision (f32 KV, f32-faithful attention and GEMMs). Chunks of 7 exercise ring caches, several
// steps and both matmul paths (gemv for <= 2 rows, cuBLASLt above). Balanced / fast keep bf16 KV (and fast
// bf16 activations in prefill GEMMs) like HF's bf16 model: bounded by how far HF's own all-bf16 run
// (logits_bf16) is from the same reference, and printed.
TEST_F(CudaDecoder, TextLogitsMatchHF) {
  auto m = model();
  for (MatmulPrecision precision : {MatmulPrecision::Faithful, MatmulPrecision::Balanced, MatmulPrecision::Fast}) {
    for (const char* name : {"text_short", "text_long"}) {
      const std::string dir = std::string("tiny_kv_eq/") + name + "/";
      auto ids = load_ids(dir + "input_ids.npy");
      auto ref = npy_as_f32(read_npy(test::data_path(dir + "logits_bf16w_f32.npy")));
      auto hf_bf16 = npy_as_f32(read_npy(test::data_path(dir + "logits_bf16.npy")));
      const float bound = precision == MatmulPrecision::Faithful ? 5e-2f : max_abs_diff(hf_bf16, ref);
      for (int64_t chunk : {int64_t(256), int64_t(7)}) {
        auto d = cuda_decoder(*m, chunk, precision);
        KvCache cache = d->new_cache();
        std::vector<float> logits;
        d->forward({.token_ids = ids}, cache, LogitsMode::All, logits);
        const float diff = max_abs_diff(logits, ref);
        std::printf("precision %d %s (%zu tokens) chunk %lld: max |cuda - HF| %.4f (bound %.4f)\n", int(precision),
                    name, ids.size(), (long long)chunk, diff, bound);
        EXPECT_LE(diff, bound) << name << " chunk " << chunk;
        EXPECT_EQ(cache.size(), int64_t(ids.size()));
      }
    }
  }
}

// An fp8 KV cache (keys and values with 3 mantissa bits): the fixture's text prompts, prefilled whole and in
// chunks of 7 (the ring caches read back as fp8), stay within 3x the distance of HF's own all-bf16 run from the
// f32 reference (printed); a wrong key scale or an unconverted byte lands far outside.
TEST_F(CudaDecoder, Fp8KvCacheLogitsStayNearHF) {
  auto m = model();
  for (MatmulPrecision precision : {MatmulPrecision::Balanced, MatmulPrecision::Fast}) {
    for (const char* name : {"text_short", "text_long"}) {
      const std::string dir = std::string("tiny_kv_eq/") + name + "/";
      auto ids = load_ids(dir + "input_ids.npy");
      auto ref = npy_as_f32(read_npy(test::data_path(dir + "logits_bf16w_f32.npy")));
      const float bound = 3 * max_abs_diff(npy_as_f32(read_npy(test::data_path(dir + "logits_bf16.npy"))), ref);
      for (int64_t chunk : {int64_t(256), int64_t(7)}) {
        auto d = cuda_decoder(*m, chunk, precision, /*graphs=*/true, /*fp8_kv=*/true);
        KvCache cache = d->new_cache();
        std::vector<float> logits;
        d->forward({.token_ids = ids}, cache, LogitsMode::All, logits);
        const float diff = max_abs_diff(logits, ref);
        std::printf("fp8 KV, precision %d %s chunk %lld: max |cuda - HF| %.4f (bound %.4f)\n", int(precision), name,
                    (long long)chunk, diff, bound);
        EXPECT_LE(diff, bound) << name << " chunk " << chunk;
        EXPECT_EQ(d->backend().kv_element_bytes(), 1u);
      }
    }
  }
}

float CudaDecoder::image_audio_text_error(const LoadedModel& m, const test::Assembled& a, int64_t chunk) {
  auto ref = npy_as_f32(read_npy(test::data_path("tiny_kv_eq/image_audio/logits_bf16w_f32.npy")));
  const size_t V = size_t(m.config.text.vocab_size);
  auto d = cuda_decoder(m, chunk);
  KvCache cache = d->new_cache();
  std::vector<float> logits;
  d->forward({.token_ids = a.ids, .embeddings_override = a.rows, .block_ids = a.block_ids}, cache, LogitsMode::All,
             logits);
  EXPECT_EQ(logits.size(), ref.size());
  if (logits.size() != ref.size()) return INFINITY;
  float worst = 0;
  for (size_t t = 0; t < a.ids.size(); ++t)
    if (a.types[t] == 0) worst = std::max(worst, max_abs_diff({logits.data() + t * V, V}, {ref.data() + t * V, V}));
  return worst;
}

TEST_F(CudaDecoder, ImageAudioLogitsMatchHFAtTextPositions) {
  auto m = model();
  test::Assembled a = test::assemble(*m);
  for (int64_t chunk : {int64_t(256), int64_t(16)})  // 16: chunks end inside images and get extended
    EXPECT_LE(image_audio_text_error(*m, a, chunk), 5e-2f) << "chunk " << chunk;
}

// The same with the images and the audio embedded on the GPU (model_cuda/cuda_media_embedder.h), from HF's own
// preprocessing outputs: the whole multimodal path on the device against HF.
TEST_F(CudaDecoder, ImageAudioLogitsMatchHFWithGpuEmbedders) {
  auto m = model();
  auto embedder = make_cuda_media_embedder(m->config, *m->weights);
  EXPECT_LE(image_audio_text_error(*m, test::assemble(*m, embedder.get()), 256), 5e-2f);
}

TEST_F(CudaDecoder, GreedyDecodeIdsMatchHF) {
  auto m = model();
  auto prompt = load_ids("tiny_kv_eq/generate/prompt.npy");
  auto want = load_ids("tiny_kv_eq/generate/greedy_bf16w_f32.npy");
  auto d = cuda_decoder(*m);
  KvCache cache = d->new_cache();
  std::vector<float> logits;
  d->forward({.token_ids = prompt}, cache, LogitsMode::Last, logits);
  std::vector<int32_t> got;
  while (got.size() < want.size()) {
    const int32_t next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    got.push_back(next);
    d->forward({.token_ids = {&got.back(), 1}}, cache, LogitsMode::Last, logits);
  }
  EXPECT_EQ(got, want);

  // The same on the device argmax path (no logits copied back).
  KvCache cache2 = d->new_cache();
  d->forward({.token_ids = prompt}, cache2, LogitsMode::Last, logits);
  std::vector<int32_t> got2{int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin())};
  while (got2.size() < want.size()) {
    int32_t next = got2.back();
    BatchItem item{.input = {.token_ids = {&next, 1}}, .cache = &cache2, .mode = LogitsMode::Last, .argmax = &next};
    d->forward_batch({&item, 1});
    got2.push_back(next);
  }
  EXPECT_EQ(got2, want);
}

// One batched step over sequences of different lengths (decode rows + prefill chunks) equals the
// CPU backend's results for each sequence; clones and truncation keep the rows.
TEST_F(CudaDecoder, BatchedStepsMatchCpuBackend) {
  auto m = model();
  auto ids = load_ids("tiny_kv_eq/text_long/input_ids.npy");
  Decoder cpu(m->config, *m->weights, ThreadPool::global());
  auto gpu = cuda_decoder(*m);
  const size_t V = size_t(m->config.text.vocab_size);
  const std::vector<int64_t> prefix{0, 5, 19, 40};  // tokens each sequence already holds
  std::vector<KvCache> cpu_caches, gpu_caches;
  std::vector<float> scratch;
  for (int64_t p : prefix) {
    cpu_caches.push_back(cpu.new_cache(4));
    gpu_caches.push_back(gpu->new_cache(4));
    if (p == 0) continue;
    cpu.forward({.token_ids = {ids.data(), size_t(p)}}, cpu_caches.back(), LogitsMode::None, scratch);
    gpu->forward({.token_ids = {ids.data(), size_t(p)}}, gpu_caches.back(), LogitsMode::None, scratch);
  }
  const std::vector<int64_t> lengths{9, 1, 3, 1};
  std::vector<float> want(prefix.size() * V * 9), got(prefix.size() * V * 9);
  std::vector<BatchItem> cpu_items, gpu_items;
  for (size_t i = 0; i < prefix.size(); ++i) {
    std::span<const int32_t> tokens{ids.data() + prefix[i], size_t(lengths[i])};
    cpu_items.push_back({.input = {.token_ids = tokens},
                         .cache = &cpu_caches[i],
                         .mode = LogitsMode::All,
                         .logits = want.data() + i * V * 9});
    gpu_items.push_back({.input = {.token_ids = tokens},
                         .cache = &gpu_caches[i],
                         .mode = LogitsMode::All,
                         .logits = got.data() + i * V * 9});
  }
  cpu.forward_batch(cpu_items);
  gpu->forward_batch(gpu_items);
  for (size_t i = 0; i < prefix.size(); ++i) {
    const size_t n = size_t(lengths[i]) * V;
    EXPECT_LE(max_abs_diff({got.data() + i * V * 9, n}, {want.data() + i * V * 9, n}), 5e-2f) << "item " << i;
  }
  // A clone continues exactly like the original; truncation rolls back within the ring slack.
  KvCache clone = gpu_caches[3];
  KvCache& original = gpu_caches[3];
  std::vector<float> a, b;
  const int32_t next = ids[50];
  gpu->forward({.token_ids = {&next, 1}}, clone, LogitsMode::Last, a);
  gpu->forward({.token_ids = {&next, 1}}, original, LogitsMode::Last, b);
  EXPECT_EQ(a, b);
  // Back to 40 tokens and position 40 again: the logits of the batched step's item 3 (the CPU's, in
  // `want`).
  original.truncate(40);
  gpu->forward({.token_ids = {ids.data() + 40, 1}}, original, LogitsMode::Last, b);
  EXPECT_LE(max_abs_diff(b, {want.data() + 3 * V * 9, V}), 5e-2f);
  EXPECT_EQ(original.size(), 41);
}

// Decode steps on the decode attention kernel (the fixture model's head dim 16 takes the flash kernel): a random
// tiny model with the kernel's shapes (sliding layers: 4 heads over 2 kv heads of 128; full: MQA of 4 heads at 256),
// three sequences of different lengths whose window-8 rings wrap, stepped together on CUDA (faithful: f32 KV) and
// on the CPU backend with the same tokens, then one step mixing a chunk with decode rows; the logits agree.
TEST_F(CudaDecoder, DecodeKernelStepsMatchCpuBackend) {
  test::TempDir dir;
  const ModelPreset& preset = find_preset("tiny");
  nlohmann::json config = preset.config;
  config["text_config"]["head_dim"] = 128;
  config["text_config"]["global_head_dim"] = 256;
  write_random_checkpoint(dir.path(), config, preset.generation_config, {.seed = 7}, ThreadPool::global());
  auto m = load_model(dir.path(), {.weight_dtype = DType::BF16});
  Decoder cpu(m->config, *m->weights, ThreadPool::global());
  auto gpu = cuda_decoder(*m);
  auto ids = load_ids("tiny_kv_eq/text_long/input_ids.npy");
  const size_t V = size_t(m->config.text.vocab_size);
  std::vector<KvCache> cpu_caches, gpu_caches;
  std::vector<int32_t> next;
  std::vector<float> scratch;
  for (int64_t p : {int64_t(3), int64_t(12), int64_t(30)}) {
    cpu_caches.push_back(cpu.new_cache());
    gpu_caches.push_back(gpu->new_cache());
    cpu.forward({.token_ids = {ids.data(), size_t(p)}}, cpu_caches.back(), LogitsMode::None, scratch);
    gpu->forward({.token_ids = {ids.data(), size_t(p)}}, gpu_caches.back(), LogitsMode::None, scratch);
    next.push_back(ids[size_t(p)]);
  }
  const size_t n = next.size();
  std::vector<float> want(n * V), got(n * V);
  // One step of every sequence on both backends (sequence `chunked` takes `chunk` instead of its next token): the
  // logits agree, and each sequence continues with the CPU's greedy token.
  const std::vector<int32_t> chunk(ids.begin() + 60, ids.begin() + 66);
  auto step_both = [&](const std::string& what, size_t chunked) {
    std::vector<BatchItem> cpu_items, gpu_items;
    for (size_t i = 0; i < n; ++i) {
      const std::span<const int32_t> tokens =
          i == chunked ? std::span<const int32_t>(chunk) : std::span<const int32_t>(&next[i], 1);
      cpu_items.push_back({.input = {.token_ids = tokens},
                           .cache = &cpu_caches[i],
                           .mode = LogitsMode::Last,
                           .logits = want.data() + i * V});
      gpu_items.push_back(cpu_items.back());
      gpu_items.back().cache = &gpu_caches[i];
      gpu_items.back().logits = got.data() + i * V;
    }
    cpu.forward_batch(cpu_items);
    gpu->forward_batch(gpu_items);
    float scale = 0;
    for (float x : want) scale = std::max(scale, std::fabs(x));
    for (size_t i = 0; i < n; ++i) {
      std::span<const float> w{want.data() + i * V, V}, g{got.data() + i * V, V};
      EXPECT_LE(max_abs_diff(g, w), 2e-3f * scale) << what << ", sequence " << i << " |logits| " << scale;
      next[i] = int32_t(std::max_element(w.begin(), w.end()) - w.begin());
    }
  };
  for (int step = 0; step < 12; ++step) step_both("step " + std::to_string(step), n);
  step_both("mixed step (sequence 1: a 6-token chunk on the flash kernel)", 1);
}

// One cache per prefix length of ids, prefilled; next[i] = the token after prefix i (the first decode input).
void prefill_prefixes(Decoder& d, const std::vector<int32_t>& ids, std::initializer_list<int64_t> lengths,
                      std::vector<KvCache>& caches, std::vector<int32_t>& next) {
  std::vector<float> scratch;
  for (int64_t p : lengths) {
    caches.push_back(d.new_cache());
    d.forward({.token_ids = {ids.data(), size_t(p)}}, caches.back(), LogitsMode::None, scratch);
    next.push_back(ids[size_t(p)]);
  }
}

// Greedy decode steps run as CUDA graphs (captured on the second step of a shape, replayed after, re-captured
// when the key splits change as the context grows or the batch changes): the same ids as without graphs, for a
// batch whose membership changes, with suppressed ids.
TEST_F(CudaDecoder, GraphStepsEqualPlainSteps) {
  auto m = model();
  auto ids = load_ids("tiny_kv_eq/text_long/input_ids.npy");
  const std::vector<int32_t> suppressed{ids[3], ids[4]};
  bool fp8 = false;
  auto run = [&](bool graphs) {
    auto d = cuda_decoder(*m, 256, MatmulPrecision::Balanced, graphs, fp8);
    std::vector<KvCache> caches;
    std::vector<int32_t> next;
    prefill_prefixes(*d, ids, {5, 17, 40}, caches, next);
    std::vector<std::vector<int32_t>> out(caches.size());
    for (int step = 0; step < 70; ++step) {
      const size_t live = step < 30 ? 3 : step < 50 ? 2 : 3;  // the batch shrinks, then grows back
      std::vector<BatchItem> items;
      for (size_t i = 0; i < live; ++i)
        items.push_back({.input = {.token_ids = {&next[i], 1}},
                         .cache = &caches[i],
                         .mode = LogitsMode::Last,
                         .argmax = &next[i],
                         .argmax_excluded = suppressed});
      d->forward_batch(items);
      for (size_t i = 0; i < live; ++i) out[i].push_back(next[i]);
    }
    return out;
  };
  for (bool kv_fp8 : {false, true}) {  // bf16 and fp8 KV caches
    fp8 = kv_fp8;
    const auto with = run(true), without = run(false);
    EXPECT_EQ(with, without) << "fp8 KV " << fp8;
    for (const auto& seq : with)
      for (int32_t id : seq) EXPECT_TRUE(id != suppressed[0] && id != suppressed[1]) << id;
  }
}

// Sampled decode steps ask for top-k candidates (nothing else comes back): captured and replayed as CUDA graphs
// next to a greedy row, they equal the oracle's selection over the rows of the same steps run without graphs.
TEST_F(CudaDecoder, TopLogitsStepsMatchTheirRows) {
  auto m = model();
  auto ids = load_ids("tiny_kv_eq/text_long/input_ids.npy");
  const int64_t V = m->config.text.vocab_size;
  const std::vector<int32_t> suppressed{ids[3], ids[7]};
  // Per step and sequence: the argmax (sequence 0) or the candidate ids (1: k = 5, 2: k = 40).
  auto run = [&](bool graphs) {
    auto d = cuda_decoder(*m, 256, MatmulPrecision::Balanced, graphs);
    std::vector<KvCache> caches;
    std::vector<int32_t> next;
    prefill_prefixes(*d, ids, {6, 19, 33}, caches, next);
    std::vector<TopLogits> tops(3);
    tops[1].k = 5;
    tops[2].k = 40;
    std::vector<std::vector<float>> rows(3, std::vector<float>(static_cast<size_t>(V)));
    std::vector<std::vector<int32_t>> seen;
    for (int step = 0; step < 24; ++step) {
      std::vector<BatchItem> items;
      for (size_t i = 0; i < 3; ++i) {
        items.push_back({.input = {.token_ids = {&next[i], 1}},
                         .cache = &caches[i],
                         .mode = LogitsMode::Last,
                         .argmax_excluded = suppressed});
        if (i == 0) items.back().argmax = &next[0];
        if (i > 0) items.back().top_logits = &tops[i];
        if (i > 0 && !graphs) items.back().logits = rows[i].data();  // the oracle's input (no graph then)
      }
      d->forward_batch(items);
      seen.push_back({next[0]});
      for (size_t i = 1; i < 3; ++i) {
        EXPECT_FALSE(tops[i].bad);
        EXPECT_TRUE(tops[i].full.empty());
        if (!graphs) {
          TopLogits want{.k = tops[i].k};
          select_top_logits(rows[i].data(), V, suppressed, want);
          EXPECT_EQ(tops[i].ids, want.ids) << "step " << step << " sequence " << i;
          EXPECT_EQ(tops[i].values, want.values) << "step " << step << " sequence " << i;
        }
        EXPECT_GE(tops[i].ids.size(), size_t(tops[i].k));
        seen.push_back(tops[i].ids);
        next[i] = tops[i].ids[size_t(step) % tops[i].ids.size()];  // some candidate, the same in both runs
      }
    }
    return seen;
  };
  EXPECT_EQ(run(true), run(false));
}

TEST_F(CudaDecoder, CacheFromAnotherBackendIsAnError) {
  auto m = model();
  auto gpu = cuda_decoder(*m);
  KvCache host_cache(m->config.text);
  std::vector<float> logits;
  const int32_t id = 5;
  try {
    gpu->forward({.token_ids = {&id, 1}}, host_cache, LogitsMode::Last, logits);
    FAIL() << "host cache accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("not made by the CUDA backend"), std::string::npos) << e.what();
  }
  // A bf16 cache on a backend with an fp8 cache (and the other way round) is named.
  auto fp8 = cuda_decoder(*m, 256, MatmulPrecision::Balanced, true, /*fp8_kv=*/true);
  auto bf16 = cuda_decoder(*m, 256, MatmulPrecision::Balanced);
  KvCache bf16_cache = bf16->new_cache();
  try {
    fp8->forward({.token_ids = {&id, 1}}, bf16_cache, LogitsMode::Last, logits);
    FAIL() << "bf16 cache accepted by an fp8 backend";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("holds bf16 rows, this backend's precision needs fp8"), std::string::npos)
        << e.what();
  }
  try {
    cuda_decoder(*m, 256, MatmulPrecision::Faithful, true, /*fp8_kv=*/true);
    FAIL() << "an fp8 KV cache accepted with the faithful precision";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("fp8 KV cache does not go with the faithful precision"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace ug
