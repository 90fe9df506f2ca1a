// Command-line media options shared by run, logits and preprocess: --image/--audio/--video PATH (repeatable;
// command-line order is kept, so "--image a.png --audio b.wav --image c.jpg" is three items in that order)
// and the preprocessing settings.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <vector>

#include "runtime/multimodal_prompt.h"

namespace ug::cli {

struct MediaArgs {
  std::vector<MediaSource> items;
  int64_t image_tokens = 0;  // 0: the model's vision_config.num_soft_tokens
  int64_t video_frames = 32;
  double video_fps = 0;
  int64_t video_max_frames = 0;
  int64_t video_frame_tokens = 70;
  bool video_audio = false;
  std::string resampler = "sinc";
  int64_t max_image_pixels = MediaLimits{}.max_image_pixels;

  MediaOptions options() const;
};

// Adds the options to `sub`; `with_items` false leaves out --image/--audio/--video (settings only).
void add_media_options(CLI::App& sub, const std::shared_ptr<MediaArgs>& args, bool with_items = true);

// "/image PATH", "/audio PATH", "/video PATH" typed in the interactive chat -> a media item; nullopt otherwise.
std::optional<MediaSource> parse_media_command(const std::string& line);

}  // namespace ug::cli
