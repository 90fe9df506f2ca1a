// Encoded video (MP4, MKV, WebM, MOV, ... anything FFmpeg demuxes) -> a sample of RGB frames with their
// source indices and timestamps (spec §6). Default sampling is HF's: 32 frames at floor(i * T / 32) of the T
// frames in the stream. The fps mode takes one frame every 1/F seconds (the model card's long-video mode),
// capped at max_frames by spreading that many uniformly over the whole video.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "media/image_decode.h"
#include "media/media_limits.h"

namespace ug {

struct VideoSampling {
  int64_t num_frames = 32;  // uniform mode (fps == 0); a video with fewer frames keeps all of them
  double fps = 0;           // > 0: fps mode
  int64_t max_frames = 0;   // fps mode cap (0 = limits.max_video_frames)
};

struct VideoFrames {
  std::vector<RgbImage> frames;     // sampled frames, in order, all the same size
  std::vector<int64_t> indices;     // source frame index of each sampled frame
  std::vector<double> timestamps;   // seconds: index / stream_fps (HF's formula)
  double stream_fps = 0;            // from the container (24 assumed, with a warning, when it has none)
  int64_t total_frames = 0;         // frames in the stream (counted by demuxing when the header has none)
};

// Throws ug::Error naming `what` for corrupt data, no video stream, zero frames, or limits exceeded.
VideoFrames decode_video(std::span<const uint8_t> bytes, const VideoSampling& sampling, const MediaLimits& limits,
                         std::string_view what);
VideoFrames decode_video_file(const std::string& path, const VideoSampling& sampling,
                              const MediaLimits& limits = {});

// The source frame indices the sampling picks from a stream of `total_frames` at `stream_fps`.
std::vector<int64_t> sample_frame_indices(int64_t total_frames, double stream_fps, const VideoSampling& sampling,
                                          const MediaLimits& limits);

}  // namespace ug
