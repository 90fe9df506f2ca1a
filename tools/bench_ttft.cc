#include "bench_ttft.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <memory>

#include "bench_stats.h"
#include "core/error.h"
#include "runtime/multimodal_prompt.h"

namespace ug::cli {

std::vector<uint8_t> synthetic_bmp(int width, int height) {
  UG_CHECK(width >= 1 && height >= 1 && width <= 16384 && height <= 16384, "synthetic image {}x{} out of range", width,
           height);
  const uint32_t row = uint32_t(3 * width + 3) / 4 * 4, data = row * uint32_t(height), file = 54 + data;
  std::vector<uint8_t> b(file, 0);
  const auto put = [&](size_t at, uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) b[at + size_t(i)] = uint8_t(v >> (8 * i));
  };
  b[0] = 'B';
  b[1] = 'M';
  put(2, file, 4);
  put(10, 54, 4);  // pixel data offset
  put(14, 40, 4);  // BITMAPINFOHEADER
  put(18, uint32_t(width), 4);
  put(22, uint32_t(height), 4);  // positive: bottom-up rows
  put(26, 1, 2);                 // planes
  put(28, 24, 2);                // bits per pixel (BI_RGB)
  put(34, data, 4);
  uint32_t state = 12345;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      state = state * 1664525u + 1013904223u;  // LCG noise
      const int noise = int(state >> 27);
      uint8_t* p = &b[54 + size_t(y) * row + 3 * size_t(x)];
      p[0] = uint8_t(x * 255 / width + noise);  // B, G, R
      p[1] = uint8_t(y * 255 / height + noise);
      p[2] = uint8_t((x + y) * 255 / (width + height) + noise);
    }
  return b;
}

void bench_ttft_image(const LoadedModel& model, Decoder& decoder, MediaEmbedder& embedder,
                      std::span<const int32_t> text, const TtftImageArgs& a, int64_t reps, ThreadPool& pool) {
  UG_CHECK(int64_t(text.size()) >= a.text_tokens, "--ttft-text {} needs that many text tokens", a.text_tokens);
  const MediaOptions options{.image_tokens = a.image_tokens, .cache_bytes = 0};  // a new image every time
  // A file is read again for each repetition (as an upload's bytes would arrive); the synthetic BMP is in memory.
  const MediaSource source =
      a.file.empty() ? MediaSource{.kind = MediaKind::Image,
                                   .bytes = std::make_shared<const std::vector<uint8_t>>(synthetic_bmp(a.width, a.height)),
                                   .name = "synthetic image"}
                     : MediaSource{.kind = MediaKind::Image, .path = a.file};
  const int64_t n_visual = MediaEncoder(model, nullptr, pool, options, &embedder).encode(source)->n_visual;
  // <bos> <boi> image x n_visual <eoi> text: the token layout of one image in a user turn.
  const MultimodalTokens& t = model.config.tokens;
  std::vector<int32_t> ids{int32_t(model.config.text.bos_token_id), int32_t(t.boi)};
  ids.insert(ids.end(), size_t(n_visual), int32_t(t.image));
  ids.push_back(int32_t(t.eoi));
  ids.insert(ids.end(), text.begin(), text.begin() + a.text_tokens);

  std::vector<double> ttft, embed, prefill;
  std::vector<float> logits;
  for (int64_t r = 0; r < reps + 1; ++r) {
    MediaEncoder encoder(model, nullptr, pool, options, &embedder);
    const auto t0 = std::chrono::steady_clock::now();
    const PromptInput in = encoder.scatter(ids, {&source, 1});  // decode, preprocess, embed, attach
    const double t_embed = seconds_since(t0);
    const auto rows = in.override_rows(0, in.size(), model.config.text.hidden_size);
    KvCache cache = decoder.new_cache();
    const auto t1 = std::chrono::steady_clock::now();
    decoder.forward({.token_ids = in.tokens, .embeddings_override = rows, .block_ids = in.block_ids}, cache,
                    LogitsMode::Last, logits);
    const auto first = std::max_element(logits.begin(), logits.end());  // the first token (greedy)
    UG_CHECK(first != logits.end() && std::isfinite(*first), "ttft: the prefill gave no finite logits");
    const double t_prefill = seconds_since(t1);
    if (r == 0) continue;  // warm-up
    embed.push_back(1e3 * t_embed);
    prefill.push_back(1e3 * t_prefill);
    ttft.push_back(1e3 * (t_embed + t_prefill));
  }
  const Stat s = stats(ttft), e = stats(embed), p = stats(prefill);
  std::printf(
      "\n| test                                  |        TTFT ms | image (decode, preprocess, embed) ms | "
      "prefill + first token ms |\n"
      "|---------------------------------------|----------------|--------------------------------------|"
      "--------------------------|\n");
  char name[96];
  const std::string what = a.file.empty() ? std::to_string(a.width) + "x" + std::to_string(a.height)
                                          : std::filesystem::path(a.file).filename().string();
  std::snprintf(name, sizeof name, "ttft image %lld + %lld text (%s)", (long long)n_visual, (long long)a.text_tokens,
                what.c_str());
  std::printf("| %-37s | %6.1f ± %5.1f | %15.1f ± %5.1f %12s | %11.1f ± %5.1f %4s |\n", name, s.mean, s.sd, e.mean,
              e.sd, "", p.mean, p.sd, "");
  std::fflush(stdout);
}

}  // namespace ug::cli
