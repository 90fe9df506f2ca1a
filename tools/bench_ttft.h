// unigemma bench --ttft-image: time to first token of a multimodal prompt (issue 4: one 280-token image + 50 text
// tokens) as a request sees it: the image decoded, preprocessed and embedded (a fresh MediaEncoder each time: no
// embedding cache, a new image), then the whole prompt prefilled and the first token's logits read back.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "model/decoder.h"
#include "model/embedders.h"
#include "model/loaded_model.h"

namespace ug::cli {

struct TtftImageArgs {
  int64_t text_tokens = 50;
  int64_t image_tokens = 0;  // soft-token budget of the image; 0 = vision_config.num_soft_tokens (280 for the 12B)
  int width = 896, height = 896;
  std::string file;  // an image file (any format this build decodes) instead of the synthetic BMP
};

// A deterministic 24-bit BMP (gradients plus noise, so that resizing does real work), as an upload would carry it.
std::vector<uint8_t> synthetic_bmp(int width, int height);

// Runs the measurement `reps` times after one warm-up and prints its table (TTFT and the embed / prefill split,
// mean ± sd in ms). text: token ids for the text part (at least text_tokens of them). embedder: where the image is
// embedded (next to the decoder, as the server does).
void bench_ttft_image(const LoadedModel& model, Decoder& decoder, MediaEmbedder& embedder,
                      std::span<const int32_t> text, const TtftImageArgs& args, int64_t reps, ThreadPool& pool);

}  // namespace ug::cli
