// Multimodal prompt assembly (spec §4.3-4.5, §5.3, §6): a tokenized chat prompt whose media placeholders
// (<|image|>, <|audio|>, <|video|>, one per media item, in order) are expanded into
// boi + N x image + eoi, boa + T x audio + eoa, and per video frame "mm:ss " + boi + n x video + eoi, with
// the items' embeddings attached to the soft-token positions and one bidirectional block per image / frame.
// Token ids come from config.json. Media are decoded, preprocessed and embedded once per (content,
// settings): a MediaEncoder keeps an LRU cache of embeddings, so the same image in a later turn (or another
// request) is not re-embedded.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/thread_pool.h"
#include "media/audio_decode.h"
#include "media/media_limits.h"
#include "media/video_decode.h"
#include "model/embedders.h"
#include "model/loaded_model.h"
#include "runtime/prompt_input.h"
#include "tokenizer/tokenizer.h"

namespace ug {

enum class MediaKind { Image, Audio, Video };
std::string_view media_kind_name(MediaKind k);

// One media item of a prompt: a file path or encoded bytes, plus per-item preprocessing overrides.
struct MediaSource {
  MediaKind kind = MediaKind::Image;
  std::string path;                                   // read from disk when `bytes` is null
  std::shared_ptr<const std::vector<uint8_t>> bytes;  // encoded file contents
  std::string name;                                   // for error messages (default: path or "media N")
  std::optional<int64_t> image_tokens;                // soft-token budget of an image (default: options)
};

struct MediaOptions {
  int64_t image_tokens = 0;         // 0 = vision_config.num_soft_tokens (280 for the 12B)
  int64_t video_frame_tokens = 70;  // per video frame (HF's video processor default)
  VideoSampling video;              // HF default: 32 uniformly sampled frames
  // Soundtrack of a video as audio tokens: after each frame's block, the audio from that frame's timestamp
  // to the next frame's (the last frame: to the end), as boa + T x audio + eoa (omitted when empty).
  bool video_audio = false;
  Resampler resampler = Resampler::Sinc;  // to 16 kHz: torchaudio's default (HF's reference) or libsoxr VHQ
  MediaLimits limits;
  int64_t cache_bytes = int64_t(1) << 30;  // embedding cache size (LRU)
};

// One media item after decoding, preprocessing and embedding: the text that replaces its placeholder (special
// tokens written as text, plus video timestamps) and the embedding rows of its soft tokens, by kind.
struct EncodedMedia {
  MediaKind kind = MediaKind::Image;
  std::string layout_text;
  std::shared_ptr<const std::vector<float>> visual_rows;  // [n_visual, hidden]: image or video soft tokens
  std::shared_ptr<const std::vector<float>> audio_rows;   // [n_audio, hidden]
  int64_t n_visual = 0, n_audio = 0;
  uint64_t content_hash = 0;  // media bytes + preprocessing settings
  int64_t bytes() const {
    return int64_t(sizeof(float)) *
           int64_t((visual_rows ? visual_rows->size() : 0) + (audio_rows ? audio_rows->size() : 0));
  }
};

class MediaEncoder {
 public:
  // `tokenizer` may be null for scatter() (ids given); assemble_text() needs it. `embedder`: where images and audio
  // are embedded (e.g. the GPU's, runtime/decoder_factory.h; it must outlive this); nullptr: the CPU, on `pool`.
  MediaEncoder(const LoadedModel& model, const Tokenizer* tokenizer, ThreadPool& pool, MediaOptions options,
               MediaEmbedder* embedder = nullptr);

  // Decodes, preprocesses and embeds (or takes from the cache). Throws ug::Error naming the item.
  std::shared_ptr<const EncodedMedia> encode(const MediaSource& source);

  // HF processor semantics: each <|image|> / <|audio|> / <|video|> placeholder in `text` (a rendered chat
  // prompt), in order, is replaced by the layout of the corresponding media item; the text is tokenized;
  // soft-token positions get the items' rows. Placeholder count and kinds must match `media`.
  PromptInput assemble_text(const std::string& text, std::span<const MediaSource> media);
  // The same with the media slots given: media_at holds the byte offsets of the placeholders that stand for
  // `media` (RenderedChat::media_at). Placeholder text anywhere else is literal, e.g. a re-sent reply in which
  // the model generated that token: it stays that token with its own embedding, in no bidirectional block,
  // exactly as when it was generated (so the prefix cache still matches it).
  PromptInput assemble_text(const std::string& text, std::span<const size_t> media_at,
                            std::span<const MediaSource> media);

  // Token ids given with the soft tokens already expanded (unigemma logits --tokens): the items' rows fill
  // the image / video / audio soft-token positions in order, per kind (HF's masked_scatter). Counts must match.
  PromptInput scatter(std::span<const int32_t> tokens, std::span<const MediaSource> media);

  const MediaOptions& options() const { return options_; }
  int64_t cache_hits() const { return hits_; }
  int64_t cache_misses() const { return misses_; }

 private:
  // literal: [n] soft tokens that take no media row (empty: none).
  PromptInput attach(std::vector<int32_t> tokens, std::span<const std::shared_ptr<const EncodedMedia>> items,
                     const std::vector<bool>& literal);
  std::shared_ptr<const EncodedMedia> encode_uncached(const MediaSource& source, std::span<const uint8_t> bytes,
                                                      uint64_t hash);
  std::shared_ptr<EncodedMedia> encode_image(const MediaSource& source, std::span<const uint8_t> bytes);
  std::shared_ptr<EncodedMedia> encode_audio(const MediaSource& source, std::span<const uint8_t> bytes);
  std::shared_ptr<EncodedMedia> encode_video(const MediaSource& source, std::span<const uint8_t> bytes);
  std::string piece(int64_t id) const;

  const LoadedModel& model_;
  const Tokenizer* tokenizer_;
  ThreadPool& pool_;                             // image resizes (and the CPU embedders)
  std::unique_ptr<MediaEmbedder> own_embedder_;  // the CPU one when none was given
  MediaEmbedder& embedder_;
  MediaOptions options_;
  std::mutex mutex_;
  using Entry = std::pair<std::string, std::shared_ptr<const EncodedMedia>>;
  std::list<Entry> lru_;  // most recent first; key = SHA-256 of (settings, bytes)
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  int64_t cached_bytes_ = 0, hits_ = 0, misses_ = 0;
};

}  // namespace ug
