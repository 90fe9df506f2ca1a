#include "model_cuda/cuda_decoder_backend.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backend/cuda/attention.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/fused_ops.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/gemm_tuning_file.h"
#include "backend/cuda/gemv.h"
#include "backend/cuda/op_profiler.h"
#include "backend/cuda/ops.h"
#include "core/error.h"
#include "model/decoder.h"
#include "model_cuda/device_kv_storage.h"
#include "model_cuda/device_weights.h"

namespace ug {
namespace {

using cuda::DeviceBuffer;

constexpr int64_t kGemvRows = 2;  // matmuls of up to this many rows use cuda::gemv (measured: docs/perf.md)

constexpr int64_t kGraphMaxSeqs = 1024;  // sequences of a step that a CUDA graph may hold

// A GEMM's partial outputs that a kernel sums as it loads them (F32Chunks): up to decode_gemm's most k slices, 8
// (three rounds of load_chunked's loads cost a latency-bound reader less than a sum_chunks pass first: H200, session
// 18, b8 +1.3%, b32 / b64 within noise); more go through one sum_chunks pass first.
constexpr int64_t kReadChunks = 8;

// Room for the top-k candidates of a row: twice the largest k of the step (ties at the boundary), a power of two so
// that steps of similar k share a CUDA graph. More candidates than that come back as the whole row.
int64_t top_capacity(int32_t max_k, int64_t vocab) {
  if (max_k <= 0) return 0;
  return std::min<int64_t>(int64_t(std::bit_ceil(uint32_t(std::max(2 * max_k, 128)))), vocab);
}

// One row of cuda::top_logits_rows' output -> top (ids ascending); more candidates than its room: the whole row
// (logits_row, device memory) instead.
void unpack_top(const int32_t* row, int64_t capacity, const float* logits_row, int64_t vocab, cudaStream_t stream,
                TopLogits& top) {
  top.ids.clear();
  top.values.clear();
  top.full.clear();
  top.bad = row[0] == -1;
  if (top.bad) return;
  const int64_t count = row[0];
  if (count < 0) {
    top.full.resize(size_t(vocab));
    UG_CUDA_CHECK(
        cudaMemcpyAsync(top.full.data(), logits_row, size_t(vocab) * sizeof(float), cudaMemcpyDeviceToHost, stream));
    UG_CUDA_CHECK(cudaStreamSynchronize(stream));
    return;
  }
  std::vector<std::pair<int32_t, float>> pairs(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) pairs[size_t(i)] = {row[1 + i], std::bit_cast<float>(row[1 + capacity + i])};
  std::sort(pairs.begin(), pairs.end());
  for (const auto& [id, value] : pairs) {
    top.ids.push_back(id);
    top.values.push_back(value);
  }
}

const char* kv_type_name(cuda::KvType t) {
  return t == cuda::KvType::F32 ? "f32" : t == cuda::KvType::Fp8 ? "fp8" : "bf16";
}

// The power of two an fp8 cache divides a layer's keys by so that they stay within e4m3's +-448: a key is
// RMS-normalised over head_dim values and then scaled by k_norm, so no element exceeds sqrt(head_dim) x max|k_norm|
// (RoPE rotates pairs, which keeps that bound). Values are normalised without a weight: sqrt(head_dim) <= 448.
float fp8_k_scale(int64_t head_dim, const std::vector<float>& k_norm) {
  constexpr double kE4m3Max = 448.0;
  UG_CHECK(std::sqrt(double(head_dim)) <= kE4m3Max, "fp8 KV cache: head_dim {} lets values exceed e4m3's range",
           head_dim);
  double largest = k_norm.empty() ? 1.0 : 0.0;
  for (float w : k_norm) largest = std::max(largest, double(std::fabs(w)));
  UG_CHECK(std::isfinite(largest), "fp8 KV cache: a k_norm weight is not finite");
  float scale = 1.0f;
  while (std::sqrt(double(head_dim)) * largest / scale > kE4m3Max) scale *= 2.0f;
  return scale;
}

class CudaDecoderBackend final : public DecoderBackend {
 public:
  CudaDecoderBackend(const ModelConfig& config, const ModelWeights& weights, const CudaBackendOptions& options)
      : config_(config), options_(options) {
    UG_CHECK(cuda::device_available(), "cuda backend: no usable CUDA device");
    UG_CUDA_CHECK(cudaSetDevice(options.device));
    UG_CUDA_CHECK(cudaStreamCreate(&stream_));
    UG_CHECK(!options.fp8_kv || options.precision != MatmulPrecision::Faithful,
             "cuda backend: an fp8 KV cache does not go with the faithful precision (f32 KV); use balanced or fast");
    for (size_t li = 0; li < config.text.layers.size(); ++li)
      k_scales_.push_back(fp8_k_scale(config.text.layers[li].head_dim, weights.layers[li].attn.k_norm));
    weights_ = std::make_unique<cuda::DeviceWeights>(config, weights);
    rope_tables_.resize(size_t(weights_->rope_kinds()));
    rope_table_made_.resize(rope_tables_.size());
    gemm_ = std::make_unique<cuda::Gemm>();
    // Prefill products keep their timed cuBLASLt choice per GPU (UNIGEMMA_GEMM_TUNING: a path, or off).
    for (const std::string& note : gemm_->use_tuning_file(cuda::gemm_tuning_path_from_env()))
      std::fprintf(stderr, "warning: gemm tuning: %s (UNIGEMMA_GEMM_TUNING=PATH or =off)\n", note.c_str());
    const char* env = std::getenv("UNIGEMMA_CUDA_GRAPHS");
    if (env && std::string_view(env) == "0") options_.graphs = false;
    const char* profile = std::getenv("UNIGEMMA_CUDA_PROFILE");
    if (profile && *profile && std::string_view(profile) != "0") {
      profiler_ = std::make_unique<cuda::OpProfiler>(stream_);
      options_.graphs = false;  // a replayed graph has no per-op events
    }
    UG_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&graph_ids_), kGraphMaxSeqs * sizeof(int32_t)));
  }
  ~CudaDecoderBackend() override {
    cudaStreamSynchronize(stream_);
    if (profiler_ && !profiler_->empty()) std::fputs(profiler_->report().c_str(), stderr);
    destroy_graphs();
    if (graph_ids_) cudaFreeHost(graph_ids_);
    if (graph_top_) cudaFreeHost(graph_top_);
    if (pinned_) cudaFreeHost(pinned_);
    cudaStreamDestroy(stream_);
  }

  std::string_view name() const override { return "cuda"; }

  std::unique_ptr<KvStorage> new_kv_storage(int64_t ring_slack) override {
    return std::make_unique<cuda::DeviceKvStorage>(config_.text, ring_slack, options_.device, kv_type());
  }

  int64_t free_memory_bytes() const override {
    size_t free = 0, total = 0;
    UG_CUDA_CHECK(cudaMemGetInfo(&free, &total));
    return int64_t(free);
  }

  size_t kv_element_bytes() const override { return size_t(cuda::kv_type_bytes(kv_type())); }

  float* scratch(Scratch s, int64_t floats) override {
    // A buffer about to move may be one that a fusion across calls refers to (x_terms_of_, pending_y_).
    if (int64_t(scratch_[size_t(s)].size()) < floats) settle();
    return ensure(scratch_[size_t(s)], floats);
  }

  void begin_step(std::span<const BatchItem> items, const StepLayout& layout) override;
  void embed(std::span<const BatchItem> items, float scale, float* h) override;

  void rms_norm(NormWeight w, int64_t layer, const float* x, float* out, int64_t rows, int64_t dim) override {
    if (replaying()) return;
    settle();
    cuda::OpScope scope(profiler_.get(), "rms_norm");
    const float* weight = weights_->norm(w, layer);
    cuda::rms_norm({.x = x,
                    .out = out,
                    .weight = weight,
                    .weight_type = weight ? cuda::WeightType::F32 : cuda::WeightType::None,
                    .rows = rows,
                    .dim = dim,
                    .eps = config_.text.rms_norm_eps},
                   stream_);
  }

  void add_scaled(float* h, const float* branch, float scale, int64_t n) override {
    if (replaying()) return;
    settle();
    cuda::OpScope scope(profiler_.get(), "add_scaled");
    cuda::add_scaled({.h = h, .branch = branch, .scale = scale, .n = n}, stream_);
  }

  void matmul(LayerMatrix m, int64_t layer, const float* x, int64_t rows, float* y) override {
    if (replaying()) return;
    static constexpr const char* kNames[] = {"matmul q",    "matmul k",  "matmul v",   "matmul o",
                                             "matmul gate", "matmul up", "matmul down"};
    settle();
    cuda::OpScope scope(profiler_.get(), kNames[int(m)]);
    const cuda::DeviceMatrix& w = weights_->matrix(m, layer);
    UG_CHECK(w.data != nullptr, "cuda matmul: layer {} has no matrix {}", layer, int(m));
    if (rows <= kGemvRows) return run_matmul(w, x, rows, y, split_rows(rows));
    leave_pending(
        y, gemm_->run_chunks({.w = w.data, .x = x, .m = rows, .n = w.rows, .k = w.cols, .split = split_rows(rows)},
                             stream_));
  }

  void residual_norm(const ResidualNorm& r, float* branch, float* h, float* x, int64_t rows, int64_t dim) override {
    if (replaying()) return;
    if (pending_y_ != branch) settle();
    const cuda::F32Chunks b = pending_y_ ? pending_ : cuda::F32Chunks{.data = branch};
    pending_y_ = nullptr;
    x_terms_of_ = nullptr;
    uint16_t *hi = nullptr, *lo = nullptr;
    if (x && rows > kGemvRows) {  // the next sublayer's matmul runs on cuBLASLt: write its bf16 input here
      hi = ensure(x_terms_, (split_rows(rows) ? 2 : 1) * rows * dim);
      lo = split_rows(rows) ? hi + rows * dim : nullptr;
      x_terms_of_ = x;
    }
    cuda::OpScope scope(profiler_.get(), "residual_norm");
    cuda::residual_norm({.branch = b.data,
                         .branch_chunks = b.chunks,
                         .branch_stride = b.stride,
                         .h = h,
                         .x = x,
                         .x_hi = hi,
                         .x_lo = lo,
                         .post_weight = weights_->norm(r.post, r.post_layer),
                         .next_weight = x ? weights_->norm(r.next, r.next_layer) : nullptr,
                         .scale = r.scale,
                         .rows = rows,
                         .dim = dim,
                         .eps = config_.text.rms_norm_eps},
                        stream_);
  }

  void attention_inputs(int64_t layer, const AttentionShape& s, const float* x, float* q, float* k, float* v) override;
  void feed_forward(int64_t layer, int64_t intermediate, const float* x, int64_t rows, float* out) override;

  void copy(const float* src, float* dst, int64_t n) override {
    if (replaying()) return;
    settle();
    cuda::OpScope scope(profiler_.get(), "copy");
    UG_CUDA_CHECK(cudaMemcpyAsync(dst, src, size_t(n) * sizeof(float), cudaMemcpyDeviceToDevice, stream_));
  }

  void rope(int64_t layer, float* x, int64_t heads, int64_t head_dim) override {
    if (replaying()) return;
    settle();
    cuda::OpScope scope(profiler_.get(), "rope");
    cuda::rope({.x = x,
                .positions = positions_.data(),
                .inv_freq = weights_->inv_freq(layer),
                .n_tokens = rows_,
                .n_heads = heads,
                .head_dim = head_dim},
               stream_);
  }

  void gelu_tanh_mul(const float* gate, const float* up, float* out, int64_t n) override {
    if (replaying()) return;
    settle();
    cuda::OpScope scope(profiler_.get(), "gelu_tanh_mul");
    cuda::gelu_tanh_mul({.gate = gate, .up = up, .out = out, .n = n}, stream_);
  }

  void attention(int64_t layer, const float* q, const float* k, const float* v, float* out) override;
  void logits(const float* h, std::span<const LogitsRequest> requests) override;

  const float* to_host(const float* x, int64_t n, std::vector<float>& buffer) override {
    settle();
    buffer.resize(size_t(n));
    UG_CUDA_CHECK(cudaMemcpyAsync(buffer.data(), x, size_t(n) * sizeof(float), cudaMemcpyDeviceToHost, stream_));
    UG_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return buffer.data();
  }

 private:
  // Grows a device buffer to at least n elements (contents not kept), counting reallocations: a captured graph
  // holds buffer addresses.
  template <typename T>
  T* ensure(DeviceBuffer<T>& b, int64_t n) {
    if (int64_t(b.size()) < n) {
      b = DeviceBuffer<T>(size_t(n));
      ++allocations_;
    }
    return b.data();
  }
  template <typename T>
  void upload_async(DeviceBuffer<T>& dst, const std::vector<T>& src, cudaStream_t stream) {
    if (src.empty()) return;
    ensure(dst, int64_t(src.size()));
    UG_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), src.size() * sizeof(T), cudaMemcpyHostToDevice, stream));
  }
  uint64_t allocations() const { return allocations_ + gemm_->allocations(); }
  bool replaying() const { return graph_ == Graph::Replay; }
  void prepare_graph(std::span<const BatchItem> items, const StepLayout& b);
  void start_graph();
  void graph_logits(const float* h, std::span<const LogitsRequest> requests);
  void run_head(const float* h, int64_t rows, bool argmax, int64_t top_capacity, int64_t max_excluded);
  const float2* rope_table(int64_t layer, int64_t rows, int64_t head_dim);
  void abandon_capture();
  void destroy_graphs() {
    for (auto& [key, exec] : graphs_) cudaGraphExecDestroy(exec);
    graphs_.clear();
  }

  void run_matmul(const cuda::DeviceMatrix& w, const float* x, int64_t rows, float* y, bool split) {
    // gemv streams the weight once but re-reads the activation rows from L1 per 16 weight bytes: at 1-2 rows it
    // runs at ~0.87 of the copy bandwidth, at 8 rows 0.2 (L1-bound); cuBLASLt holds ~0.55 there.
    if (rows <= kGemvRows) {
      cuda::gemv({.w = w.data, .x = x, .y = y, .m = rows, .n = w.rows, .k = w.cols}, stream_);
    } else {
      gemm_->run_f32({.w = w.data, .x = x, .y = y, .m = rows, .n = w.rows, .k = w.cols, .split = split}, stream_);
    }
  }
  // The fusions across calls (x_terms_, pending_): an op that is not their consumer settles first (a no-op while a
  // graph replays: no op runs then, so none left anything).
  void settle() {
    x_terms_of_ = nullptr;
    if (!pending_y_) return;
    cuda::OpScope scope(profiler_.get(), "sum_chunks (settle)");
    cuda::sum_chunks({.src = pending_.data, .dst = pending_y_, .n = pending_.stride, .chunks = pending_.chunks},
                     stream_);
    pending_y_ = nullptr;
  }
  void leave_pending(float* y, const cuda::F32Chunks& chunks) {
    pending_y_ = y;
    pending_ = chunks;
    if (chunks.chunks > kReadChunks) settle();
  }
  // The partials for a kernel that sums them as it loads: more than one round of loads costs such a latency-bound
  // reader more than one parallel pass (sum_chunks into `into`) first.
  cuda::F32Chunks readable(const cuda::F32Chunks& c, DeviceBuffer<float>& into) {
    if (c.chunks <= kReadChunks) return c;
    float* y = ensure(into, c.stride);
    cuda::sum_chunks({.src = c.data, .dst = y, .n = c.stride, .chunks = c.chunks}, stream_);
    return {.data = y};
  }
  // x's bf16 terms when the residual norm that wrote x also wrote them (else nullptr); settles. (Every op of a step
  // has the same rows, so the terms have the split this step's matmuls take.)
  const uint16_t* take_x_terms(const float* x) {
    const bool ready = x_terms_of_ == x;
    settle();
    return ready ? x_terms_.data() : nullptr;
  }
  // x · wᵀ of a fused projection (q/k/v, gate/up): gemv into `out` at up to kGemvRows rows, else cuBLASLt's partials
  // (from x's bf16 terms when the residual norm wrote them), made readable into `out` (readable).
  cuda::F32Chunks project(const cuda::DeviceMatrix& w, const float* x, const uint16_t* x_terms, int64_t rows,
                          DeviceBuffer<float>& out) {
    if (rows <= kGemvRows) {
      float* y = ensure(out, rows * w.rows);
      run_matmul(w, x, rows, y, split_rows(rows));
      return {.data = y};
    }
    return readable(gemm_->run_chunks({.w = w.data,
                                       .x = x_terms ? nullptr : x,
                                       .x_bf16 = x_terms,
                                       .m = rows,
                                       .n = w.rows,
                                       .k = w.cols,
                                       .split = split_rows(rows)},
                                      stream_),
                    out);
  }
  // Decode-sized matmuls take the two-term split (f32-faithful, free when memory-bound) unless fast.
  bool split_rows(int64_t rows) const {
    return options_.precision == MatmulPrecision::Faithful ||
           (options_.precision == MatmulPrecision::Balanced && rows <= options_.split_max_rows);
  }
  float* pinned(size_t floats);
  cuda::KvType kv_type() const { return cuda::kv_type_of(attention_mode()); }
  // Faithful: f32 KV and f32-faithful attention; balanced: bf16 KV (the model's real need), two-term queries
  // and probabilities; fast: all bf16 like HF's bf16 model.
  cuda::AttentionMode attention_mode() const {
    if (options_.fp8_kv) return cuda::AttentionMode::ExactFp8Kv;
    switch (options_.precision) {
      case MatmulPrecision::Faithful:
        return cuda::AttentionMode::ExactF32Kv;
      case MatmulPrecision::Balanced:
        return cuda::AttentionMode::Exact;
      case MatmulPrecision::Fast:
        return cuda::AttentionMode::Fast;
    }
    return cuda::AttentionMode::ExactF32Kv;
  }

  const ModelConfig& config_;
  CudaBackendOptions options_;
  std::vector<float> k_scales_;  // per layer: what an fp8 cache divides keys by (fp8_k_scale)
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<cuda::DeviceWeights> weights_;
  std::unique_ptr<cuda::Gemm> gemm_;
  std::unique_ptr<cuda::OpProfiler> profiler_;  // UNIGEMMA_CUDA_PROFILE=1
  std::array<DeviceBuffer<float>, size_t(Scratch::Count)> scratch_;

  // The current step, uploaded by begin_step.
  int64_t rows_ = 0, n_seqs_ = 0, max_keys_full_ = 0, max_keys_sliding_ = 0;
  bool has_blocks_ = false;
  bool store_early_ = false;  // qkv_prepare appends this step's k / v rows (begin_step says when it may)
  std::vector<int64_t> host_positions_;
  DeviceBuffer<int64_t> positions_;
  DeviceBuffer<int32_t> row_seq_, block_last_, tokens_, override_index_, logit_rows_, argmax_ids_, excluded_at_,
      excluded_ids_, top_k_, top_out_, top_scratch_;
  DeviceBuffer<float> overrides_, partial_, gathered_, logits_;
  DeviceBuffer<float> qkv_out_, gate_up_out_;  // outputs of the fused projections
  DeviceBuffer<uint16_t> act_bf16_;            // GeGLU's output in the bf16 terms the down projection takes
  // Fusions across the calls of a step whose matmuls run on cuBLASLt (more than kGemvRows rows): a residual norm
  // also writes the next sublayer's input x in the bf16 terms its matmul takes (x_terms_: [terms][rows, dim], for
  // x_terms_of_), and the o and down projections leave their outputs as the GEMM's unsummed partials (pending_ for
  // pending_y_), which the next residual norm sums as it loads them: two passes and two launches fewer per matmul.
  // Every other op settles first (settle()), so no op reads stale terms or an unsummed output.
  DeviceBuffer<uint16_t> x_terms_;
  const float* x_terms_of_ = nullptr;
  float* pending_y_ = nullptr;
  cuda::F32Chunks pending_{};
  DeviceBuffer<cuda::AttentionSeq> seqs_;  // [layers, n_seqs]
  // RoPE's (cos, sin) at the step's positions, one table per rope kind (DeviceWeights::rope_kind), made by the
  // step's first layer of the kind (rope_table_made_, cleared by begin_step) and read by every layer of it.
  std::vector<DeviceBuffer<float2>> rope_tables_;
  std::vector<char> rope_table_made_;
  // Attention work plans of the step per layer kind (sliding, full) and their tiles on the device.
  std::array<cuda::AttentionPlan, 2> plans_;
  std::array<DeviceBuffer<int32_t>, 2> plan_tiles_;
  std::array<int64_t, 2> plan_kv_heads_{}, plan_head_dim_{};
  float* pinned_ = nullptr;
  size_t pinned_floats_ = 0;

  // CUDA graphs of greedy decode steps (docs/architecture.md): one per (sequences, key splits of each layer kind).
  // A step whose shape was run just before without moving any buffer is captured; later steps of that shape
  // replay it (the ops return at once; logits() launches the graph). Any reallocation drops every graph.
  enum class Graph { Off, Capture, Replay };
  // sequences, (flash, decode-kernel) splits of each layer kind, top-k candidate room
  using GraphKey = std::array<int64_t, 7>;
  Graph graph_ = Graph::Off;
  GraphKey graph_key_{}, last_key_{};
  std::map<GraphKey, cudaGraphExec_t> graphs_;
  uint64_t allocations_ = 0, graphs_made_at_ = 0, last_step_end_allocations_ = ~uint64_t(0);
  bool step_inputs_uploaded_ = false;  // tokens, logit rows and exclusions went up in begin_step
  int32_t* graph_ids_ = nullptr;       // pinned [kGraphMaxSeqs]: argmax ids of graph steps
  int32_t* graph_top_ = nullptr;       // pinned [sequences, 1 + 2 * graph_top_capacity_]: top-k candidates
  size_t graph_top_ints_ = 0;
  int64_t graph_top_capacity_ = 0;  // of the current graph step (0: no top-k row)
};

void CudaDecoderBackend::begin_step(std::span<const BatchItem> items, const StepLayout& b) {
  UG_CUDA_CHECK(cudaSetDevice(options_.device));    // steps may run on another thread than the one that loaded
  if (graph_ == Graph::Capture) abandon_capture();  // the previous step failed while capturing
  graph_ = Graph::Off;
  step_inputs_uploaded_ = false;
  x_terms_of_ = nullptr;  // a step that failed part-way may have left these
  pending_y_ = nullptr;
  std::fill(rope_table_made_.begin(), rope_table_made_.end(), 0);
  const auto& t = config_.text;
  rows_ = b.total;
  if (profiler_)
    profiler_->begin_step(rows_ == int64_t(items.size()) ? "decode, " + std::to_string(rows_) + " sequences"
                                                         : "prefill, " + std::to_string(rows_) + " rows");
  n_seqs_ = int64_t(items.size());
  std::vector<int32_t> row_seq(size_t(b.total)), block_last(size_t(b.total), -1);
  std::vector<cuda::AttentionSeq> seqs(size_t(t.n_layers() * n_seqs_));
  has_blocks_ = false;
  // qkv_prepare may append the step's k / v rows itself (kv_store's launch goes) when attention cannot read a slot
  // they overwrite: one row per sequence, every ring at least as long as its layer's window.
  store_early_ = true;
  max_keys_full_ = max_keys_sliding_ = 1;
  for (size_t i = 0; i < items.size(); ++i) {
    auto* storage = dynamic_cast<cuda::DeviceKvStorage*>(items[i].cache->storage());
    UG_CHECK(storage != nullptr,
             "forward_batch: item {}'s KV cache was not made by the CUDA backend (use "
             "Decoder::new_cache)",
             i);
    UG_CHECK(storage->type() == kv_type(),
             "forward_batch: item {}'s KV cache holds {} rows, this backend's precision needs {}", i,
             kv_type_name(storage->type()), kv_type_name(kv_type()));
    storage->grow(b.start[i] + b.n[i]);
    if (b.n[i] != 1) store_early_ = false;
    for (int64_t li = 0; li < t.n_layers() && store_early_; ++li) {
      const int64_t cap = storage->ring_capacity(li);
      const int64_t window = t.layers[size_t(li)].kind == LayerKind::Sliding ? t.sliding_window : 0;
      if (cap > 0 && (window == 0 || cap < window)) store_early_ = false;
    }
    for (int64_t r = 0; r < b.n[i]; ++r) row_seq[size_t(b.row0[i] + r)] = int32_t(i);
    const auto& ids = items[i].input.block_ids;
    for (int64_t r = b.n[i] - 1; r >= 0 && !ids.empty(); --r) {  // last row of each run of one block id
      if (ids[size_t(r)] < 0) continue;
      has_blocks_ = true;
      const bool run_ends = r + 1 == b.n[i] || ids[size_t(r + 1)] != ids[size_t(r)];
      block_last[size_t(b.row0[i] + r)] = run_ends ? int32_t(b.row0[i] + r) : block_last[size_t(b.row0[i] + r + 1)];
    }
    max_keys_full_ = std::max(max_keys_full_, b.start[i] + b.n[i]);
    max_keys_sliding_ = std::max(max_keys_sliding_, std::min(b.start[i] + b.n[i], t.sliding_window + b.n[i]));
    for (int64_t li = 0; li < t.n_layers(); ++li)
      seqs[size_t(li * n_seqs_) + i] = {.cache_k = storage->k(li),
                                        .cache_v = storage->v(li),
                                        .ring_capacity = storage->ring_capacity(li),
                                        .row0 = b.row0[i],
                                        .n_rows = b.n[i],
                                        .chunk_start = b.start[i]};
  }
  host_positions_ = b.positions;
  upload_async(positions_, host_positions_, stream_);
  upload_async(row_seq_, row_seq, stream_);
  upload_async(block_last_, block_last, stream_);
  upload_async(seqs_, seqs, stream_);
  for (LayerKind kind : {LayerKind::Sliding, LayerKind::Full}) {
    const auto layer = std::find_if(t.layers.begin(), t.layers.end(), [&](const auto& l) { return l.kind == kind; });
    if (layer == t.layers.end()) continue;
    const size_t at = kind == LayerKind::Sliding ? 0 : 1;
    plans_[at] = cuda::plan_attention(b.n, t.n_heads, layer->n_kv_heads, layer->head_dim, attention_mode(),
                                      kind == LayerKind::Sliding ? max_keys_sliding_ : max_keys_full_,
                                      options_.max_attention_splits);
    plan_head_dim_[at] = layer->head_dim;
    upload_async(plan_tiles_[at], plans_[at].tiles, stream_);
    plan_kv_heads_[at] = layer->n_kv_heads;
  }
  prepare_graph(items, b);
  // The uploads read host vectors that go away: pageable-memory copies are staged before returning,
  // but make that explicit (and cheap: nothing else is queued yet).
  UG_CUDA_CHECK(cudaStreamSynchronize(stream_));
  start_graph();
}

// A greedy decode step (one row per sequence, argmax only, no media): everything it reads from the host goes up
// now, buffers are sized, and the graph mode is chosen (see graph_).
void CudaDecoderBackend::prepare_graph(std::span<const BatchItem> items, const StepLayout& b) {
  bool eligible = options_.graphs && n_seqs_ <= kGraphMaxSeqs && !has_blocks_;
  for (size_t i = 0; i < items.size() && eligible; ++i)
    eligible = b.n[i] == 1 && items[i].input.embeddings_override.empty() && items[i].mode == LogitsMode::Last &&
               (items[i].argmax || items[i].top_logits) && !items[i].logits;
  if (!eligible) {
    last_key_ = {};
    return;
  }
  const auto& t = config_.text;
  std::vector<int32_t> tokens, index, excluded_at{0}, excluded_ids, top_k;
  int32_t max_k = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const int32_t id = items[i].input.token_ids[0];
    top_k.push_back(items[i].top_logits ? items[i].top_logits->k : 0);
    max_k = std::max(max_k, top_k.back());
    UG_CHECK(id >= 0 && id < t.vocab_size, "cuda embed: token {} outside the vocabulary [0, {})", id, t.vocab_size);
    UG_CHECK(int64_t(items[i].argmax_excluded.size()) <= cuda::kArgmaxMaxExcluded,
             "cuda argmax: {} excluded ids, at most {}", items[i].argmax_excluded.size(), cuda::kArgmaxMaxExcluded);
    tokens.push_back(id);
    index.push_back(int32_t(i));
    excluded_ids.insert(excluded_ids.end(), items[i].argmax_excluded.begin(), items[i].argmax_excluded.end());
    excluded_at.push_back(int32_t(excluded_ids.size()));
  }
  if (excluded_ids.empty()) excluded_ids.push_back(0);  // a valid pointer for the kernel
  upload_async(tokens_, tokens, stream_);
  upload_async(logit_rows_, index, stream_);
  upload_async(excluded_at_, excluded_at, stream_);
  upload_async(excluded_ids_, excluded_ids, stream_);
  graph_top_capacity_ = top_capacity(max_k, t.vocab_size);
  if (graph_top_capacity_ > 0) {
    upload_async(top_k_, top_k, stream_);
    const size_t ints = size_t(n_seqs_ * (1 + 2 * graph_top_capacity_));
    ensure(top_out_, int64_t(ints));
    ensure(top_scratch_, cuda::top_logits_scratch_ints(n_seqs_, t.vocab_size, graph_top_capacity_));
    if (ints > graph_top_ints_) {  // a graph copies into it: a new one drops them all (as a device buffer)
      if (graph_top_) UG_CUDA_CHECK(cudaFreeHost(graph_top_));
      graph_top_ = nullptr;
      UG_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&graph_top_), ints * sizeof(int32_t)));
      graph_top_ints_ = ints;
      ++allocations_;
    }
  }
  step_inputs_uploaded_ = true;
  int64_t partial = 1;
  for (size_t k = 0; k < plans_.size(); ++k)
    partial = std::max(partial, cuda::attention_partial_floats(plans_[k], rows_, t.n_heads, plan_head_dim_[k]));
  ensure(partial_, partial);
  ensure(gathered_, n_seqs_ * t.hidden_size);
  ensure(logits_, n_seqs_ * t.vocab_size);
  ensure(argmax_ids_, n_seqs_);
  if (allocations() != graphs_made_at_) {  // some buffer moved: no graph may run again
    destroy_graphs();
    graphs_made_at_ = allocations();
  }
  graph_key_ = {n_seqs_,
                plans_[0].splits,
                plans_[1].splits,
                plans_[0].decode_splits,
                plans_[1].decode_splits,
                graph_top_capacity_,
                store_early_ ? 1 : 0};
  if (graphs_.count(graph_key_))
    graph_ = Graph::Replay;
  else if (graph_key_ == last_key_ && allocations() == last_step_end_allocations_)
    graph_ = Graph::Capture;  // begins after begin_step's synchronisation
  last_key_ = graph_key_;
}

void CudaDecoderBackend::start_graph() {
  if (graph_ == Graph::Capture) UG_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed));
}

void CudaDecoderBackend::abandon_capture() {
  cudaGraph_t g = nullptr;
  cudaStreamEndCapture(stream_, &g);
  if (g) cudaGraphDestroy(g);
  cudaGetLastError();  // the failed capture's error is reported already
  graph_ = Graph::Off;
  last_key_ = {};
}

// lm_head over the rows logit_rows_ names -> softcap -> logits_; with argmax, argmax_ids_, and with a top-k
// capacity, top_out_ (for the rows whose top_k_ is not 0), both skipping the exclusions in excluded_at_ /
// excluded_ids_ (max_excluded 0: none). Buffers are sized and uploaded by the caller.
void CudaDecoderBackend::run_head(const float* h, int64_t rows, bool argmax, int64_t top_capacity,
                                  int64_t max_excluded) {
  const int64_t D = config_.text.hidden_size, V = config_.text.vocab_size;
  cuda::OpScope scope(profiler_.get(), "head (lm_head, softcap, argmax)");
  cuda::gather_rows({.src = h, .index = logit_rows_.data(), .dst = gathered_.data(), .count = rows, .dim = D}, stream_);
  run_matmul(weights_->lm_head(), gathered_.data(), rows, logits_.data(), /*split=*/true);
  if (config_.text.final_logit_softcap)
    cuda::softcap({.x = logits_.data(), .n = rows * V, .cap = float(*config_.text.final_logit_softcap)}, stream_);
  const int32_t* excluded_at = max_excluded > 0 ? excluded_at_.data() : nullptr;
  const int32_t* excluded_ids = max_excluded > 0 ? excluded_ids_.data() : nullptr;
  if (argmax)
    cuda::argmax_rows({.x = logits_.data(),
                       .out = argmax_ids_.data(),
                       .rows = rows,
                       .n = V,
                       .excluded_at = excluded_at,
                       .excluded_ids = excluded_ids,
                       .max_excluded = max_excluded},
                      stream_);
  if (top_capacity > 0)
    cuda::top_logits_rows({.x = logits_.data(),
                           .k = top_k_.data(),
                           .out = top_out_.data(),
                           .scratch = top_scratch_.data(),
                           .rows = rows,
                           .n = V,
                           .capacity = top_capacity,
                           .excluded_at = excluded_at,
                           .excluded_ids = excluded_ids,
                           .max_excluded = max_excluded},
                          stream_);
}

// The rest of a graph step: capture ends with the logits (lm_head, softcap, argmax into pinned memory), then the
// graph runs.
void CudaDecoderBackend::graph_logits(const float* h, std::span<const LogitsRequest> requests) {
  const int64_t rows = n_seqs_;
  UG_CHECK(int64_t(requests.size()) == rows, "cuda graph step: {} logits requests for {} sequences", requests.size(),
           rows);
  if (graph_ == Graph::Capture) {
    run_head(h, rows, /*argmax=*/true, graph_top_capacity_, cuda::kArgmaxMaxExcluded);
    UG_CUDA_CHECK(cudaMemcpyAsync(graph_ids_, argmax_ids_.data(), size_t(rows) * sizeof(int32_t),
                                  cudaMemcpyDeviceToHost, stream_));
    if (graph_top_capacity_ > 0)
      UG_CUDA_CHECK(cudaMemcpyAsync(graph_top_, top_out_.data(),
                                    size_t(rows * (1 + 2 * graph_top_capacity_)) * sizeof(int32_t),
                                    cudaMemcpyDeviceToHost, stream_));
    cudaGraph_t g = nullptr;
    UG_CUDA_CHECK(cudaStreamEndCapture(stream_, &g));
    graph_ = Graph::Off;
    cudaGraphExec_t exec = nullptr;
    const cudaError_t made = cudaGraphInstantiate(&exec, g, 0);
    cudaGraphDestroy(g);
    UG_CUDA_CHECK(made);
    UG_CHECK(allocations() == graphs_made_at_, "cuda graph: a buffer moved while capturing a decode step");
    graphs_[graph_key_] = exec;
  }
  graph_ = Graph::Off;
  UG_CUDA_CHECK(cudaGraphLaunch(graphs_.at(graph_key_), stream_));
  UG_CUDA_CHECK(cudaStreamSynchronize(stream_));
  const int64_t V = config_.text.vocab_size;
  for (int64_t i = 0; i < rows; ++i) {
    const LogitsRequest& r = requests[size_t(i)];
    if (r.argmax) *r.argmax = graph_ids_[i];
    if (r.top)
      unpack_top(graph_top_ + i * (1 + 2 * graph_top_capacity_), graph_top_capacity_, logits_.data() + i * V, V,
                 stream_, *r.top);
  }
  last_step_end_allocations_ = allocations();
}

void CudaDecoderBackend::embed(std::span<const BatchItem> items, float scale, float* h) {
  if (replaying()) return;
  settle();
  const int64_t D = config_.text.hidden_size, V = config_.text.vocab_size;
  if (step_inputs_uploaded_) {  // a graph step: tokens are on the device, no host vectors to wait for
    cuda::embed({.table = weights_->embed_tokens().data,
                 .tokens = tokens_.data(),
                 .out = h,
                 .rows = rows_,
                 .dim = D,
                 .scale = scale},
                stream_);
    return;
  }
  std::vector<int32_t> tokens, override_index;
  std::vector<float> overrides;
  bool any_override = false;
  for (const BatchItem& it : items) {
    for (size_t r = 0; r < it.input.token_ids.size(); ++r) {
      const int32_t id = it.input.token_ids[r];
      UG_CHECK(id >= 0 && id < V, "cuda embed: token {} outside the vocabulary [0, {})", id, V);
      tokens.push_back(id);
      const float* row = it.input.embeddings_override.empty() ? nullptr : it.input.embeddings_override[r];
      override_index.push_back(row ? int32_t(overrides.size() / size_t(D)) : -1);
      if (row) {
        overrides.insert(overrides.end(), row, row + D);
        any_override = true;
      }
    }
  }
  cuda::OpScope scope(profiler_.get(), "embed (upload, gather)");
  upload_async(tokens_, tokens, stream_);
  if (any_override) {
    upload_async(override_index_, override_index, stream_);
    upload_async(overrides_, overrides, stream_);
  }
  cuda::embed({.table = weights_->embed_tokens().data,
               .tokens = tokens_.data(),
               .override_index = any_override ? override_index_.data() : nullptr,
               .overrides = any_override ? overrides_.data() : nullptr,
               .out = h,
               .rows = rows_,
               .dim = D,
               .scale = scale},
              stream_);
  UG_CUDA_CHECK(cudaStreamSynchronize(stream_));  // the host vectors above go away
}

void CudaDecoderBackend::attention(int64_t li, const float* q, const float* k, const float* v, float* out) {
  if (replaying()) return;
  settle();
  const auto& t = config_.text;
  const auto& l = t.layers[size_t(li)];
  const bool sliding = l.kind == LayerKind::Sliding;
  const int64_t H = t.n_heads, d = l.head_dim;
  const size_t kind = sliding ? 0 : 1;
  const cuda::AttentionPlan& plan = plans_[kind];
  UG_CHECK(l.n_kv_heads == plan_kv_heads_[kind] && d == plan_head_dim_[kind],
           "cuda attention: layer {} has {} kv heads of dim {}, other {} layers {} of dim {}", li, l.n_kv_heads, d,
           sliding ? "sliding" : "full", plan_kv_heads_[kind], plan_head_dim_[kind]);
  const cuda::AttentionSeq* seqs = seqs_.data() + li * n_seqs_;
  float* partial = ensure(partial_, std::max<int64_t>(1, cuda::attention_partial_floats(plan, rows_, H, d)));
  cuda::AttentionParams p{.q = q,
                          .k = k,
                          .v = v,
                          .out = out,
                          .seqs = seqs,
                          .block_last = sliding && has_blocks_ ? block_last_.data() : nullptr,  // variant A
                          .partial = partial,
                          .rows = rows_,
                          .n_seqs = n_seqs_,
                          .n_heads = H,
                          .n_kv_heads = l.n_kv_heads,
                          .head_dim = d,
                          .window = sliding ? t.sliding_window : 0,
                          .scale = 1.0f,
                          .mode = attention_mode(),
                          .k_scale = k_scales_[size_t(li)]};
  cuda::apply_plan(p, plan, plan_tiles_[kind].data());
  {
    cuda::OpScope scope(profiler_.get(), sliding ? "attention sliding" : "attention full");
    cuda::attention(p, stream_);
  }
  if (store_early_) return;  // qkv_prepare stored them
  cuda::OpScope scope(profiler_.get(), "kv_store");
  cuda::kv_store({.k = k,
                  .v = v,
                  .seqs = seqs,
                  .row_seq = row_seq_.data(),
                  .rows = rows_,
                  .row_size = l.n_kv_heads * d,
                  .type = kv_type(),
                  .k_scale = k_scales_[size_t(li)]},
                 stream_);
}

// One matmul for q, k and v (stacked weights), then one kernel for their norms and RoPE (which sums the matmul's
// partial outputs as it loads them).
void CudaDecoderBackend::attention_inputs(int64_t layer, const AttentionShape& s, const float* x, float* q, float* k,
                                          float* v) {
  if (replaying()) return;
  const uint16_t* x_terms = take_x_terms(x);
  const cuda::DeviceMatrix& w = weights_->qkv(layer);
  const int64_t v_heads = s.has_v_proj ? s.kv_heads : 0;
  UG_CHECK(w.rows == (s.heads + s.kv_heads + v_heads) * s.head_dim,
           "cuda attention inputs: layer {}'s stacked q/k/v projection has {} rows, expected ({} + {} + {}) x {}",
           layer, w.rows, s.heads, s.kv_heads, v_heads, s.head_dim);
  cuda::F32Chunks qkv;
  {
    cuda::OpScope scope(profiler_.get(), "matmul qkv");
    qkv = project(w, x, x_terms, s.rows, qkv_out_);
  }
  const float2* table = rope_table(layer, s.rows, s.head_dim);
  cuda::OpScope scope(profiler_.get(), "qkv_prepare (norms, rope)");
  cuda::qkv_prepare({.qkv = qkv.data,
                     .qkv_chunks = qkv.chunks,
                     .qkv_stride = qkv.stride,
                     .q = q,
                     .k = k,
                     .v = v,
                     .q_weight = weights_->norm(NormWeight::QNorm, layer),
                     .k_weight = weights_->norm(NormWeight::KNorm, layer),
                     .positions = positions_.data(),
                     .inv_freq = weights_->inv_freq(layer),
                     .rope_table = table,
                     .rows = s.rows,
                     .heads = s.heads,
                     .kv_heads = s.kv_heads,
                     .head_dim = s.head_dim,
                     .has_v = s.has_v_proj,
                     .eps = config_.text.rms_norm_eps,
                     .store_seqs = store_early_ ? seqs_.data() + layer * n_seqs_ : nullptr,
                     .store_row_seq = row_seq_.data(),
                     .store_type = kv_type(),
                     .store_k_scale = k_scales_[size_t(layer)]},
                    stream_);
}

// The step's (cos, sin) table of the layer's rope kind, made at the kind's first layer.
const float2* CudaDecoderBackend::rope_table(int64_t layer, int64_t rows, int64_t head_dim) {
  const size_t kind = size_t(weights_->rope_kind(layer));
  float2* table = ensure(rope_tables_[kind], rows * (head_dim / 2));
  if (!rope_table_made_[kind]) {
    cuda::OpScope scope(profiler_.get(), "rope_table");
    cuda::rope_table({.positions = positions_.data(),
                      .inv_freq = weights_->inv_freq(layer),
                      .table = table,
                      .rows = rows,
                      .pairs = head_dim / 2},
                     stream_);
    rope_table_made_[kind] = 1;
  }
  return table;
}

// One matmul for gate and up (stacked weights), GeGLU over its two halves, then down. On cuBLASLt (more than
// kGemvRows rows) GeGLU sums the gate/up partials as it loads them and writes the bf16 terms the down projection
// takes, whose partials stay pending for the residual norm after.
void CudaDecoderBackend::feed_forward(int64_t layer, int64_t intermediate, const float* x, int64_t rows, float* out) {
  if (replaying()) return;
  const uint16_t* x_terms = take_x_terms(x);
  const cuda::DeviceMatrix& w = weights_->gate_up(layer);
  UG_CHECK(w.rows == 2 * intermediate,
           "cuda feed forward: layer {}'s stacked gate/up projection has {} rows, expected 2 x {}", layer, w.rows,
           intermediate);
  const cuda::DeviceMatrix& down = weights_->matrix(LayerMatrix::Down, layer);
  UG_CHECK(down.data != nullptr && down.cols == intermediate,
           "cuda feed forward: layer {}'s down projection has {} columns, expected {}", layer, down.cols, intermediate);
  cuda::F32Chunks gate_up;
  {
    cuda::OpScope scope(profiler_.get(), "matmul gate_up");
    gate_up = project(w, x, x_terms, rows, gate_up_out_);
  }
  if (rows <= kGemvRows) {  // gemv: f32 activations
    float* act = scratch(Scratch::Gate, rows * intermediate);
    {
      cuda::OpScope scope(profiler_.get(), "geglu");
      cuda::geglu_rows({.gate_up = gate_up.data, .out = act, .rows = rows, .inter = intermediate}, stream_);
    }
    cuda::OpScope scope(profiler_.get(), "matmul down");
    return run_matmul(down, act, rows, out, split_rows(rows));
  }
  const bool split = split_rows(rows);
  uint16_t* act = ensure(act_bf16_, (split ? 2 : 1) * rows * intermediate);
  {
    cuda::OpScope scope(profiler_.get(), "geglu");
    cuda::geglu_rows({.gate_up = gate_up.data,
                      .gate_up_chunks = gate_up.chunks,
                      .gate_up_stride = gate_up.stride,
                      .out_bf16 = act,
                      .out_lo = split ? act + rows * intermediate : nullptr,
                      .rows = rows,
                      .inter = intermediate},
                     stream_);
  }
  cuda::OpScope scope(profiler_.get(), "matmul down");
  leave_pending(
      out, gemm_->run_chunks({.w = down.data, .x_bf16 = act, .m = rows, .n = down.rows, .k = down.cols, .split = split},
                             stream_));
}

float* CudaDecoderBackend::pinned(size_t floats) {
  if (floats > pinned_floats_) {
    if (pinned_) UG_CUDA_CHECK(cudaFreeHost(pinned_));
    pinned_ = nullptr;
    UG_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&pinned_), floats * sizeof(float)));
    pinned_floats_ = floats;
  }
  return pinned_;
}

void CudaDecoderBackend::logits(const float* h, std::span<const LogitsRequest> requests) {
  const int64_t D = config_.text.hidden_size, V = config_.text.vocab_size;
  settle();
  if (graph_ != Graph::Off) return graph_logits(h, requests);
  if (requests.empty()) {
    if (profiler_) {
      UG_CUDA_CHECK(cudaStreamSynchronize(stream_));
      profiler_->end_step();
    }
    return;
  }
  std::vector<int32_t> index, excluded_at{0}, excluded_ids, top_k;
  bool any_argmax = false;
  int32_t max_k = 0;
  size_t host_floats = 0, most_excluded = 0;
  for (const auto& r : requests) {
    UG_CHECK(r.count == 1 || (!r.argmax && !r.top), "cuda logits: an argmax or top-k over {} rows", r.count);
    for (int64_t j = 0; j < r.count; ++j) {
      index.push_back(int32_t(r.row + j));
      excluded_ids.insert(excluded_ids.end(), r.excluded.begin(), r.excluded.end());  // argmax / top rows: count 1
      excluded_at.push_back(int32_t(excluded_ids.size()));
      top_k.push_back(r.top ? r.top->k : 0);
    }
    most_excluded = std::max(most_excluded, r.excluded.size());
    any_argmax = any_argmax || r.argmax;
    if (r.top) max_k = std::max(max_k, r.top->k);
    if (r.out) host_floats += size_t(r.count * V);
  }
  UG_CHECK(int64_t(most_excluded) <= cuda::kArgmaxMaxExcluded, "cuda logits: {} excluded ids, at most {}",
           most_excluded, cuda::kArgmaxMaxExcluded);
  const int64_t rows = int64_t(index.size());
  const int64_t capacity = top_capacity(max_k, V), top_ints = capacity > 0 ? rows * (1 + 2 * capacity) : 0;
  upload_async(logit_rows_, index, stream_);
  if ((any_argmax || capacity > 0) && most_excluded > 0) {
    upload_async(excluded_at_, excluded_at, stream_);
    upload_async(excluded_ids_, excluded_ids, stream_);
  }
  if (capacity > 0) {
    upload_async(top_k_, top_k, stream_);
    ensure(top_out_, top_ints);
    ensure(top_scratch_, cuda::top_logits_scratch_ints(rows, V, capacity));
  }
  ensure(gathered_, rows * D);
  const float* out = ensure(logits_, rows * V);
  ensure(argmax_ids_, rows);
  run_head(h, rows, any_argmax, capacity, int64_t(most_excluded));
  // Only what was asked for comes back: the argmax ids (4 bytes a row), the top-k candidates and the rows with a
  // buffer.
  float* host = pinned(host_floats + size_t(rows + top_ints));
  auto* host_ids = reinterpret_cast<int32_t*>(host + host_floats);
  auto* host_top = host_ids + rows;
  if (any_argmax) {
    UG_CUDA_CHECK(
        cudaMemcpyAsync(host_ids, argmax_ids_.data(), size_t(rows) * sizeof(int32_t), cudaMemcpyDeviceToHost, stream_));
  }
  if (capacity > 0) {
    UG_CUDA_CHECK(cudaMemcpyAsync(host_top, top_out_.data(), size_t(top_ints) * sizeof(int32_t), cudaMemcpyDeviceToHost,
                                  stream_));
  }
  int64_t at = 0;
  size_t host_at = 0;
  for (const auto& r : requests) {
    if (r.out) {
      UG_CUDA_CHECK(cudaMemcpyAsync(host + host_at, out + at * V, size_t(r.count * V) * sizeof(float),
                                    cudaMemcpyDeviceToHost, stream_));
      host_at += size_t(r.count * V);
    }
    at += r.count;
  }
  UG_CUDA_CHECK(cudaStreamSynchronize(stream_));
  if (profiler_) profiler_->end_step();
  at = 0;
  host_at = 0;
  for (const auto& r : requests) {
    if (r.out) {
      std::memcpy(r.out, host + host_at, size_t(r.count * V) * sizeof(float));
      host_at += size_t(r.count * V);
    }
    if (r.argmax) *r.argmax = host_ids[at + r.count - 1];
    if (r.top) unpack_top(host_top + at * (1 + 2 * capacity), capacity, out + at * V, V, stream_, *r.top);
    at += r.count;
  }
  last_step_end_allocations_ = allocations();
}

}  // namespace

std::unique_ptr<DecoderBackend> make_cuda_decoder_backend(const ModelConfig& config, const ModelWeights& weights,
                                                          const CudaBackendOptions& options) {
  return std::make_unique<CudaDecoderBackend>(config, weights, options);
}

bool cuda_backend_available() { return cuda::device_available(); }

}  // namespace ug
