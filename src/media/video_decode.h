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
// T is the header's frame count when it has one (MP4/MOV), else the packets of the stream counted in a first
// demux pass (MKV/WebM; a file that ends before the container's declared duration is an error there).
// Frames are decoded in order up to the last sampled one and converted to RGB24 as PyAV's
// frame.to_ndarray(format="rgb24") does (libswscale, SWS_BILINEAR, swscale's default BT.601 YUV matrix), so
// lossless RGB sources (FFV1, PNG-in-MKV) come out bit-exact. A stream that decodes to fewer frames than T
// claims, so that a sampled index is never reached, is an error.
VideoFrames decode_video(std::span<const uint8_t> bytes, const VideoSampling& sampling, const MediaLimits& limits,
                         std::string_view what);
VideoFrames decode_video_file(const std::string& path, const VideoSampling& sampling,
                              const MediaLimits& limits = {});

// The source frame indices the sampling picks from a stream of T = `total_frames` at `stream_fps`:
//  - uniform mode (fps == 0): floor(i * T / num_frames) for i in [0, num_frames) (HF's formula); all T
//    frames when T <= num_frames. More than limits.max_video_frames kept frames is an error.
//  - fps mode (fps = F > 0): floor(k * stream_fps / F) for k = 0, 1, ... while below T, i.e. one frame every
//    1/F s from the first frame (F above stream_fps keeps every frame once). When that is more than the cap
//    (max_frames, or limits.max_video_frames when 0 or smaller), it is floor(i * T / cap) for i in [0, cap)
//    instead: cap frames spread uniformly over the whole video.
// Throws ug::Error for T <= 0, num_frames <= 0 or an unusable stream_fps in fps mode.
std::vector<int64_t> sample_frame_indices(int64_t total_frames, double stream_fps, const VideoSampling& sampling,
                                          const MediaLimits& limits);

}  // namespace ug
