// The Gemma 4 Unified text decoder: embeddings -> layers -> final norm -> tied head -> softcap.
// Reads top to bottom like spec §3, written once against DecoderBackend (model/decoder_backend.h):
// the CPU backend by default, the CUDA one (src/model_cuda) when the engine is asked for it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "core/thread_pool.h"
#include "model/config.h"
#include "model/decoder_backend.h"
#include "model/kv_cache.h"
#include "model/weights.h"

namespace ug {

// Called with named intermediates for parity debugging: "embeddings" (after the multimodal
// scatter), "layer.N" (output of layer N), "final_norm". data is [n_tokens, hidden] for this
// chunk's tokens.
using HiddenTap =
    std::function<void(std::string_view name, int64_t first_position, int64_t n_tokens, const float* data)>;

struct ForwardInput {
  std::span<const int32_t> token_ids;  // [n]
  // Optional: rows that replace the token embedding (multimodal soft tokens), not scaled.
  // embeddings_override[i] != nullptr -> use that [hidden] row for token i.
  std::span<const float* const> embeddings_override = {};
  // Optional: bidirectional block id per token (-1 = none); image / video-frame soft-token runs.
  std::span<const int32_t> block_ids = {};
};

enum class LogitsMode { None, Last, All };

// One sequence's part of a batched forward step: a prefill chunk or a single decode token.
struct BatchItem {
  ForwardInput input;        // tokens at positions cache->size() ..; must not split a bidirectional block
  KvCache* cache = nullptr;  // this sequence's cache (distinct per item); the tokens are appended to it
  LogitsMode mode = LogitsMode::Last;
  float* logits = nullptr;  // out, caller-sized: Last -> [vocab], All -> [n, vocab]; unused for None
  // Optional out (Last only): the argmax of the last row's logits, ties -> lowest id (torch.argmax), computed
  // where the logits are (on the GPU: no logits copy when `logits` is nullptr: greedy decode).
  int32_t* argmax = nullptr;
  // Optional out (Last only): the last row's top-k candidates (model/decoder_backend.h), for a sampler whose
  // filters begin with top-k; found where the logits are, so `logits` may be nullptr.
  TopLogits* top_logits = nullptr;
  std::span<const int32_t> argmax_excluded;  // ids the argmax and top_logits skip (a sampler's suppress_tokens)
};

// Chunking rule shared by the decoder and the scheduler (spec §3.6: a bidirectional block is never
// split across forward calls): true if a chunk may end right before token `end` (tokens end-1 and
// end are not in one block). block_ids empty = no blocks.
bool is_chunk_boundary(std::span<const int32_t> block_ids, int64_t end);

struct DecoderOptions {
  int64_t max_chunk = 256;  // prefill chunk size (a bidirectional block is never split)
};

class Decoder {
 public:
  // On the CPU backend.
  Decoder(const ModelConfig& config, const ModelWeights& weights, ThreadPool& pool, DecoderOptions options = {});
  // On the given backend (made for the same config and weights).
  Decoder(const ModelConfig& config, const ModelWeights& weights, std::unique_ptr<DecoderBackend> backend,
          DecoderOptions options = {});
  ~Decoder();

  // An empty KV cache whose rows live where this decoder's backend computes.
  KvCache new_cache(int64_t ring_slack = 0) const;

  // Processes the tokens at positions cache.size() .. + n - 1 and appends them to the cache.
  // logits: Last -> [vocab], All -> [n, vocab] (after softcap); None -> left empty.
  void forward(const ForwardInput& input, KvCache& cache, LogitsMode mode, std::vector<float>& logits,
               const HiddenTap& tap = nullptr);

  // One step over several sequences: every matmul runs once over all items' rows (each weight is
  // read once per step), attention runs per item against its own cache. Each item is processed
  // whole (no max_chunk splitting; the caller sizes chunks). Results are bitwise what forward()
  // gives for each item alone on the CPU backend (every op is row-wise and cpu::matmul's per-row
  // result does not depend on the other rows); on CUDA the GEMM path depends on the row count. The
  // tap (if any) is called per item with that item's rows (host memory). Not re-entrant: one step
  // at a time per decoder.
  void forward_batch(std::span<const BatchItem> items, const HiddenTap& tap = nullptr);

  const ModelConfig& config() const { return config_; }
  float embed_scale() const { return embed_scale_; }
  DecoderBackend& backend() { return *backend_; }

 private:
  void validate(const ForwardInput& input) const;
  void attention_block(int64_t layer, const float* x, const StepLayout& b, float* out);
  void step_logits(std::span<const BatchItem> items, const StepLayout& b, const float* h);
  void tap_items(const HiddenTap& tap, const std::string& name, std::span<const BatchItem> items, const StepLayout& b,
                 const float* h);

  const ModelConfig& config_;
  std::unique_ptr<DecoderBackend> backend_;
  DecoderOptions options_;
  float embed_scale_;
  std::vector<float> layer_scalar_;  // per layer
};

// Index of a tap name in HF's output_hidden_states list ([layers + 1] entries: 0 = "embeddings",
// N + 1 = "layer.N" for all but the last layer, n_layers = "final_norm"); -1 for taps HF does not
// list.
int64_t hf_hidden_state_index(std::string_view name, int64_t n_layers);

// RoPE frequencies of one layer: default (all pairs) or proportional (first p*d/2 pairs, exponent
// over d).
std::vector<float> rope_inv_freq(const LayerConfig& layer);

}  // namespace ug
