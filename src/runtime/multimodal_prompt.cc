#include "runtime/multimodal_prompt.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "core/mapped_file.h"
#include "media/audio_decode.h"
#include "media/image_decode.h"
#include "media/image_preprocess.h"
#include "model/embedders.h"
#include "runtime/content_hash.h"

namespace ug {
namespace {

// The encoded bytes of a source: its own buffer, or the file mapped read-only.
struct SourceBytes {
  std::unique_ptr<MappedFile> mapped;
  std::span<const uint8_t> span;
};

SourceBytes load_bytes(const MediaSource& s, const MediaLimits& limits, const std::string& name) {
  SourceBytes b;
  if (s.bytes) {
    b.span = *s.bytes;
  } else {
    UG_CHECK(!s.path.empty(), "{}: neither a path nor bytes given", name);
    b.mapped = std::make_unique<MappedFile>(s.path);
    b.span = {reinterpret_cast<const uint8_t*>(b.mapped->data()), b.mapped->size()};
  }
  UG_CHECK(!b.span.empty(), "{}: the file is empty", name);
  UG_CHECK(int64_t(b.span.size()) <= limits.max_file_bytes, "{}: {} bytes is more than the limit of {} bytes",
           name, b.span.size(), limits.max_file_bytes);
  return b;
}

std::string display_name(const MediaSource& s, size_t index) {
  if (!s.name.empty()) return s.name;
  if (!s.path.empty()) return s.path;
  return fmt::format("{} {}", media_kind_name(s.kind), index + 1);
}

// HF's video timestamp: f"{int(t // 60):02d}:{int(t % 60):02d}".
std::string mm_ss(double seconds) {
  double minutes = std::floor(seconds / 60);
  double rest = seconds - minutes * 60;
  return fmt::format("{:02d}:{:02d}", int64_t(minutes), int64_t(rest));
}

std::string repeat(const std::string& s, int64_t n) {
  std::string out;
  out.reserve(s.size() * size_t(n));
  for (int64_t i = 0; i < n; ++i) out += s;
  return out;
}

ImagePatches to_patches(const PatchGrid& grid, bool divide) {
  ImagePatches p;
  p.pixels = divide ? rescale_u8_divide(grid.pixels) : rescale_u8(grid.pixels);
  p.xs = grid.xs;
  p.ys = grid.ys;
  return p;
}

// The soft-token placeholder texts <|image|>, <|audio|>, <|video|> (the pieces of config.json's ids), in
// MediaKind order. None is a prefix of another or overlaps itself.
struct Placeholders {
  std::string text[3];

  int at(std::string_view s, size_t pos) const {  // which one starts at pos, or -1
    if (pos > s.size()) return -1;
    for (int k = 0; k < 3; ++k)
      if (s.substr(pos, text[k].size()) == text[k]) return k;
    return -1;
  }
  size_t next(std::string_view s, size_t from) const {  // offset of the first one at or after `from`, or npos
    size_t best = std::string_view::npos;
    for (const std::string& t : text) best = std::min(best, s.find(t, from));
    return best;
  }
  int64_t count(std::string_view s) const {
    int64_t n = 0;
    for (size_t at = next(s, 0); at != std::string_view::npos; at = next(s, at + 1)) ++n;
    return n;
  }
};

Placeholders placeholders_of(const Tokenizer* tokenizer, const MultimodalTokens& t) {
  UG_CHECK(tokenizer, "multimodal prompt assembly needs a tokenizer");
  auto piece = [&](int64_t id) { return std::string(tokenizer->id_to_piece(int32_t(id))); };
  return {.text = {piece(t.image), piece(t.audio), piece(t.video)}};
}

// Which soft tokens of `tokens` are literal (placeholder text outside the media slots). Each placeholder text is
// one special token and the layouts hold exactly their items' soft tokens, so the soft tokens come in the runs
// of `soft_runs`: literal, media, literal, ..., literal. Empty when none is literal.
std::vector<bool> literal_soft_tokens(std::span<const int32_t> tokens, std::span<const int64_t> soft_runs,
                                      const MultimodalTokens& t) {
  bool any = false;
  for (size_t r = 0; r < soft_runs.size(); r += 2) any |= soft_runs[r] > 0;
  if (!any) return {};
  std::vector<bool> literal(tokens.size(), false);
  size_t run = 0;
  int64_t left = soft_runs[0];
  for (size_t p = 0; p < tokens.size(); ++p) {
    const int32_t id = tokens[p];
    if (id != t.image && id != t.audio && id != t.video) continue;
    while (left == 0 && run + 1 < soft_runs.size()) left = soft_runs[++run];
    UG_CHECK(left > 0, "multimodal prompt: the tokenized prompt has more soft tokens than its text");
    literal[p] = run % 2 == 0;
    --left;
  }
  for (size_t r = run + 1; r < soft_runs.size(); ++r) left += soft_runs[r];
  UG_CHECK(left == 0, "multimodal prompt: the tokenized prompt has fewer soft tokens than its text");
  return literal;
}

}  // namespace

std::string_view media_kind_name(MediaKind k) {
  switch (k) {
    case MediaKind::Image: return "image";
    case MediaKind::Audio: return "audio";
    case MediaKind::Video: return "video";
  }
  return "media";
}

MediaEncoder::MediaEncoder(const LoadedModel& model, const Tokenizer* tokenizer, ThreadPool& pool,
                           MediaOptions options, MediaEmbedder* embedder)
    : model_(model),
      tokenizer_(tokenizer),
      pool_(pool),
      own_embedder_(embedder ? nullptr : make_cpu_media_embedder(model.config, *model.weights, pool)),
      embedder_(embedder ? *embedder : *own_embedder_),
      options_(std::move(options)) {
  if (options_.image_tokens == 0 && model_.config.vision) options_.image_tokens = model_.config.vision->num_soft_tokens;
  UG_CHECK(options_.image_tokens > 0 || !model_.config.vision, "image tokens per image must be positive, got {}",
           options_.image_tokens);
  UG_CHECK(options_.video_frame_tokens > 0, "video tokens per frame must be positive, got {}",
           options_.video_frame_tokens);
}

std::string MediaEncoder::piece(int64_t id) const {
  UG_CHECK(tokenizer_, "multimodal prompt assembly needs a tokenizer");
  return std::string(tokenizer_->id_to_piece(int32_t(id)));
}

std::shared_ptr<const EncodedMedia> MediaEncoder::encode(const MediaSource& source) {
  const std::string name = display_name(source, 0);
  SourceBytes b = load_bytes(source, options_.limits, name);
  const int64_t image_tokens = source.image_tokens.value_or(options_.image_tokens);
  Sha256 h;
  const VideoSampling& v = options_.video;
  h.update(fmt::format("unigemma-media-v1 kind={} image_tokens={} frame_tokens={} frames={} fps={} max={} audio={} "
                       "resampler={}\n",
                       media_kind_name(source.kind), image_tokens, options_.video_frame_tokens, v.num_frames, v.fps,
                       v.max_frames, options_.video_audio, resampler_name(options_.resampler)));
  h.update(b.span);
  const std::string key = h.digest();
  {
    std::lock_guard lock(mutex_);
    if (auto it = index_.find(key); it != index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      ++hits_;
      return it->second->second;
    }
    ++misses_;
  }
  MediaSource with_budget = source;
  with_budget.image_tokens = image_tokens;
  with_budget.name = name;
  auto encoded = with_context(name, [&] { return encode_uncached(with_budget, b.span, first_u64(key)); });
  std::lock_guard lock(mutex_);
  if (index_.count(key) || encoded->bytes() > options_.cache_bytes) return encoded;
  lru_.emplace_front(key, encoded);
  index_[key] = lru_.begin();
  cached_bytes_ += encoded->bytes();
  while (cached_bytes_ > options_.cache_bytes && !lru_.empty()) {
    cached_bytes_ -= lru_.back().second->bytes();
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  return encoded;
}

std::shared_ptr<const EncodedMedia> MediaEncoder::encode_uncached(const MediaSource& source,
                                                                  std::span<const uint8_t> bytes, uint64_t hash) {
  std::shared_ptr<EncodedMedia> out;
  switch (source.kind) {
    case MediaKind::Image: out = encode_image(source, bytes); break;
    case MediaKind::Audio: out = encode_audio(source, bytes); break;
    case MediaKind::Video: out = encode_video(source, bytes); break;
  }
  out->kind = source.kind;
  out->content_hash = hash;
  return out;
}

std::shared_ptr<EncodedMedia> MediaEncoder::encode_image(const MediaSource& source,
                                                               std::span<const uint8_t> bytes) {
  UG_CHECK(model_.config.vision, "this model has no vision embedder (config.json has no vision_config)");
  RgbImage img = decode_image(bytes, options_.limits, source.name);
  PatchGrid grid = preprocess_image(img.rgb, img.size, *source.image_tokens, &pool_);
  auto out = std::make_shared<EncodedMedia>();
  out->n_visual = grid.count();
  out->visual_rows = std::make_shared<const std::vector<float>>(
      embedder_.image(to_patches(grid, /*divide=*/false)));
  if (tokenizer_) {
    const MultimodalTokens& t = model_.config.tokens;
    out->layout_text = piece(t.boi) + repeat(piece(t.image), out->n_visual) + piece(t.eoi);
  }
  return out;
}

std::shared_ptr<EncodedMedia> MediaEncoder::encode_audio(const MediaSource& source,
                                                               std::span<const uint8_t> bytes) {
  UG_CHECK(model_.config.audio, "this model has no audio embedder (config.json has no audio_config)");
  AudioClip clip = decode_audio(bytes, options_.limits, source.name, {.resampler = options_.resampler});
  UG_CHECK(!clip.samples.empty(), "{}: the audio has no samples", source.name);
  std::vector<float> frames = audio_frames(clip.samples);
  auto out = std::make_shared<EncodedMedia>();
  out->n_audio = int64_t(frames.size()) / kAudioFrameSamples;
  out->audio_rows = std::make_shared<const std::vector<float>>(embedder_.audio(frames));
  if (tokenizer_) {
    const MultimodalTokens& t = model_.config.tokens;
    out->layout_text = piece(t.boa) + repeat(piece(t.audio), out->n_audio) + piece(t.eoa);
  }
  return out;
}

// Frames as separate image blocks of video soft tokens, "mm:ss " before each, joined by spaces (HF's video
// processor). With video_audio, each frame's block is followed by the soundtrack from its timestamp to the
// next frame's as one audio block (see MediaOptions).
std::shared_ptr<EncodedMedia> MediaEncoder::encode_video(const MediaSource& source,
                                                               std::span<const uint8_t> bytes) {
  UG_CHECK(model_.config.vision, "this model has no vision embedder (config.json has no vision_config)");
  VideoFrames video = decode_video(bytes, options_.video, options_.limits, source.name);
  const int64_t n_frames = int64_t(video.frames.size());
  std::vector<PatchGrid> grids;
  ImagePatches all;
  for (const RgbImage& f : video.frames) {
    grids.push_back(preprocess_image(f.rgb, f.size, options_.video_frame_tokens, &pool_));
    ImagePatches p = to_patches(grids.back(), /*divide=*/true);
    all.pixels.insert(all.pixels.end(), p.pixels.begin(), p.pixels.end());
    all.xs.insert(all.xs.end(), p.xs.begin(), p.xs.end());
    all.ys.insert(all.ys.end(), p.ys.begin(), p.ys.end());
  }
  auto out = std::make_shared<EncodedMedia>();
  out->n_visual = all.count();
  out->visual_rows = std::make_shared<const std::vector<float>>(embedder_.image(all));
  std::vector<int64_t> audio_tokens(size_t(n_frames), 0);
  if (options_.video_audio) {
    UG_CHECK(model_.config.audio, "--video-audio: this model has no audio embedder");
    AudioClip clip = decode_audio(bytes, options_.limits, source.name, {.resampler = options_.resampler});
    std::vector<float> frames;
    for (int64_t i = 0; i < n_frames; ++i) {
      auto at = [&](double t) { return std::min<int64_t>(int64_t(clip.samples.size()), std::llround(t * kAudioSampleRate)); };
      int64_t begin = at(video.timestamps[size_t(i)]);
      int64_t end = i + 1 < n_frames ? at(video.timestamps[size_t(i + 1)]) : int64_t(clip.samples.size());
      if (end <= begin) continue;
      std::vector<float> seg = audio_frames(std::span(clip.samples).subspan(size_t(begin), size_t(end - begin)));
      audio_tokens[size_t(i)] = int64_t(seg.size()) / kAudioFrameSamples;
      frames.insert(frames.end(), seg.begin(), seg.end());
    }
    out->n_audio = int64_t(frames.size()) / kAudioFrameSamples;
    if (out->n_audio > 0)
      out->audio_rows = std::make_shared<const std::vector<float>>(embedder_.audio(frames));
  }
  if (tokenizer_) {
    const MultimodalTokens& t = model_.config.tokens;
    for (int64_t i = 0; i < n_frames; ++i) {
      if (i > 0) out->layout_text += ' ';
      out->layout_text += mm_ss(video.timestamps[size_t(i)]) + " " + piece(t.boi) +
                          repeat(piece(t.video), grids[size_t(i)].count()) + piece(t.eoi);
      if (audio_tokens[size_t(i)] > 0)
        out->layout_text += piece(t.boa) + repeat(piece(t.audio), audio_tokens[size_t(i)]) + piece(t.eoa);
    }
  }
  return out;
}

PromptInput MediaEncoder::assemble_text(const std::string& text, std::span<const MediaSource> media) {
  // HF's processor: every placeholder in the text is a media slot.
  const Placeholders ph = placeholders_of(tokenizer_, model_.config.tokens);
  std::vector<size_t> media_at;
  for (size_t at = ph.next(text, 0); at != std::string::npos; at = ph.next(text, at + 1)) media_at.push_back(at);
  return assemble_text(text, media_at, media);
}

PromptInput MediaEncoder::assemble_text(const std::string& text, std::span<const size_t> media_at,
                                        std::span<const MediaSource> media) {
  const Placeholders ph = placeholders_of(tokenizer_, model_.config.tokens);
  const MediaKind kinds[3] = {MediaKind::Image, MediaKind::Audio, MediaKind::Video};
  std::string expanded;
  std::vector<std::shared_ptr<const EncodedMedia>> items;
  std::vector<int64_t> soft_runs;  // soft tokens of the expanded text in order: literal, media, literal, ...
  size_t pos = 0;
  for (size_t at : media_at) {
    const int which = at >= pos ? ph.at(text, at) : -1;
    UG_CHECK(which >= 0, "media slot {}: byte {} of the prompt is not a media placeholder after the previous one",
             items.size() + 1, at);
    UG_CHECK(items.size() < media.size(), "the prompt has more media placeholders than the {} media item(s) given",
             media.size());
    const MediaSource& src = media[items.size()];
    UG_CHECK(src.kind == kinds[which], "media placeholder {} is {} but item {} ({}) is {}", items.size() + 1,
             ph.text[which], items.size() + 1, display_name(src, items.size()), media_kind_name(src.kind));
    MediaSource named = src;
    named.name = display_name(src, items.size());
    items.push_back(encode(named));
    soft_runs.push_back(ph.count(std::string_view(text).substr(pos, at - pos)));
    soft_runs.push_back(items.back()->n_visual + items.back()->n_audio);
    expanded.append(text, pos, at - pos);
    expanded += items.back()->layout_text;
    pos = at + ph.text[which].size();
  }
  soft_runs.push_back(ph.count(std::string_view(text).substr(pos)));
  expanded.append(text, pos);
  UG_CHECK(items.size() == media.size(), "{} media item(s) given but the prompt has {} placeholder(s)", media.size(),
           items.size());
  std::vector<int32_t> tokens = tokenizer_->encode(expanded);
  std::vector<bool> literal = literal_soft_tokens(tokens, soft_runs, model_.config.tokens);
  return attach(std::move(tokens), items, literal);
}

PromptInput MediaEncoder::scatter(std::span<const int32_t> tokens, std::span<const MediaSource> media) {
  std::vector<std::shared_ptr<const EncodedMedia>> items;
  for (size_t i = 0; i < media.size(); ++i) {
    MediaSource named = media[i];
    named.name = display_name(media[i], i);
    items.push_back(encode(named));
  }
  return attach({tokens.begin(), tokens.end()}, items, {});
}

// Walks the tokens; each soft token takes the next row of its kind (image, video or audio), items in order.
// Consecutive positions filled from one item become one MediaSpan.
PromptInput MediaEncoder::attach(std::vector<int32_t> tokens,
                                 std::span<const std::shared_ptr<const EncodedMedia>> items,
                                 const std::vector<bool>& literal) {
  const MultimodalTokens& t = model_.config.tokens;
  struct Queue {
    std::vector<std::pair<size_t, int64_t>> order;  // (item, rows) in item order
    size_t item = 0;
    int64_t row = 0, total = 0, used = 0;
  };
  Queue image, video, audio;
  for (size_t i = 0; i < items.size(); ++i) {
    const EncodedMedia& m = *items[i];
    Queue& visual = m.kind == MediaKind::Video ? video : image;
    if (m.n_visual > 0) visual.order.push_back({i, m.n_visual}), visual.total += m.n_visual;
    if (m.n_audio > 0) audio.order.push_back({i, m.n_audio}), audio.total += m.n_audio;
  }
  PromptInput out;
  const int64_t n = int64_t(tokens.size());
  for (int64_t p = 0; p < n; ++p) {
    const int32_t id = literal.empty() || !literal[size_t(p)] ? tokens[size_t(p)] : -1;
    Queue* q = id == t.image ? &image : id == t.video ? &video : id == t.audio ? &audio : nullptr;
    if (!q) continue;
    ++q->used;
    if (q->item >= q->order.size()) continue;  // counted; reported below
    const auto [item, rows] = q->order[q->item];
    const EncodedMedia& m = *items[item];
    const bool is_audio = q == &audio;
    MediaSpan* last = out.media.empty() ? nullptr : &out.media.back();
    const auto& rows_ptr = is_audio ? m.audio_rows : m.visual_rows;
    if (last && last->position + last->count == p && last->rows == rows_ptr && last->row_offset + last->count == q->row) {
      ++last->count;
    } else {
      out.media.push_back({.position = p, .count = 1, .rows = rows_ptr, .row_offset = q->row,
                           .content_hash = m.content_hash ^ (uint64_t(q->row) * 0x9E3779B97F4A7C15ull) ^ (is_audio ? 1u : 0u)});
    }
    if (++q->row == rows) q->item++, q->row = 0;
  }
  auto check = [](const Queue& q, const char* what) {
    UG_CHECK(q.used == q.total, "the prompt has {} {} soft token(s) but the media give {} row(s)", q.used, what,
             q.total);
  };
  check(image, "image");
  check(video, "video");
  check(audio, "audio");
  if (literal.empty()) {
    out.block_ids = block_ids_for(tokens, t);
  } else {  // literal soft tokens join no block: their KV is what it was when the model generated them
    std::vector<int32_t> media_only = tokens;
    for (size_t p = 0; p < media_only.size(); ++p)
      if (literal[p]) media_only[p] = -1;
    out.block_ids = block_ids_for(media_only, t);
  }
  out.tokens = std::move(tokens);
  return out;
}

}  // namespace ug
