#include "media_args.h"

#include "core/error.h"

namespace ug::cli {

MediaOptions MediaArgs::options() const {
  MediaOptions o;
  o.image_tokens = image_tokens;
  o.video_frame_tokens = video_frame_tokens;
  o.video = {.num_frames = video_frames, .fps = video_fps, .max_frames = video_max_frames};
  o.video_audio = video_audio;
  auto r = parse_resampler(resampler);
  UG_CHECK(r.has_value(), "--resampler: expected sinc or soxr, got '{}'", resampler);
  o.resampler = *r;
  o.limits.max_image_pixels = max_image_pixels;
  return o;
}

void add_media_options(CLI::App& sub, const std::shared_ptr<MediaArgs>& a, bool with_items) {
  if (with_items) {
    auto add_item = [&sub, a](const char* flag, MediaKind kind, const char* help) {
      sub.add_option_function<std::vector<std::string>>(
             flag, [](const std::vector<std::string>&) {}, help)
          ->each([a, kind](const std::string& path) { a->items.push_back({.kind = kind, .path = path}); })
          ->trigger_on_parse()
          ->type_name("PATH");
    };
    add_item("--image", MediaKind::Image, "Image file (PNG, JPEG, WebP, GIF, BMP); repeatable, order kept");
    add_item("--audio", MediaKind::Audio, "Audio file (WAV, FLAC, MP3, Ogg/Opus, M4A/AAC, ...); repeatable");
    add_item("--video", MediaKind::Video, "Video file (MP4, MKV, WebM, MOV, ...); repeatable");
  }
  sub.add_option("--image-tokens", a->image_tokens,
                 "Soft tokens per image: 70, 140, 280, 560 or 1120 (default: the model's, 280 for the 12B)")
      ->check(CLI::PositiveNumber);
  sub.add_option("--video-frames", a->video_frames, "Frames sampled uniformly from a video (HF default 32)")
      ->check(CLI::PositiveNumber);
  sub.add_option("--video-fps", a->video_fps, "Sample video frames at this rate instead (e.g. 1)")
      ->check(CLI::PositiveNumber);
  sub.add_option("--video-max-frames", a->video_max_frames, "Cap on frames in --video-fps mode (0: 4096)")
      ->check(CLI::NonNegativeNumber);
  sub.add_option("--video-frame-tokens", a->video_frame_tokens, "Soft tokens per video frame (HF default 70)")
      ->check(CLI::PositiveNumber);
  sub.add_flag("--video-audio", a->video_audio,
               "Include a video's soundtrack: after each frame, the audio until the next frame (docs/media.md)");
  sub.add_option("--resampler", a->resampler,
                 "Audio to 16 kHz: sinc (torchaudio's default, matches HF; default) or soxr (libsoxr VHQ, sharper)");
  sub.add_option("--max-image-pixels", a->max_image_pixels, "Reject images / frames larger than this")
      ->check(CLI::PositiveNumber);
}

std::optional<MediaSource> parse_media_command(const std::string& line) {
  for (auto [prefix, kind] : {std::pair{"/image", MediaKind::Image}, std::pair{"/audio", MediaKind::Audio},
                              std::pair{"/video", MediaKind::Video}}) {
    const std::string p = prefix;
    if (line.rfind(p, 0) != 0 || (line.size() > p.size() && line[p.size()] != ' ')) continue;
    std::string path = line.substr(std::min(line.size(), p.size() + 1));
    while (!path.empty() && path.front() == ' ') path.erase(path.begin());
    while (!path.empty() && (path.back() == ' ' || path.back() == '\r')) path.pop_back();
    UG_CHECK(!path.empty(), "{}: give a file path, e.g. {} photo.jpg", p, p);
    return MediaSource{.kind = kind, .path = path};
  }
  return std::nullopt;
}

}  // namespace ug::cli
