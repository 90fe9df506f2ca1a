// Encoded audio (WAV int16/int24/int32/float, FLAC, MP3, Ogg/Opus/Vorbis, M4A/AAC, or the soundtrack of a
// video) -> mono float samples at 16 kHz, the input of Gemma 4's audio path (spec §5.1). Decoding is FFmpeg
// (libavformat/libavcodec), streamed packet by packet; channels are averaged (downmix = mean, as
// torchaudio/librosa do); resampling is libsoxr at its very-high-quality setting. Samples are not
// normalised, dithered or clipped: int16 s becomes s / 32768 exactly.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "media/media_limits.h"

namespace ug {

constexpr int kAudioSampleRate = 16'000;
constexpr int64_t kAudioFrameSamples = 640;  // 40 ms: one soft token

struct AudioClip {
  std::vector<float> samples;    // mono, kAudioSampleRate
  int64_t source_rate = 0;       // of the decoded stream
  int64_t source_channels = 0;
  std::string codec;             // FFmpeg codec name, for messages
};

// Throws ug::Error naming `what` for corrupt or truncated data, no audio stream, or a duration beyond
// `limits.max_audio_seconds`. An input with zero samples decodes to an empty clip (the caller decides).
AudioClip decode_audio(std::span<const uint8_t> bytes, const MediaLimits& limits, std::string_view what);
AudioClip decode_audio_file(const std::string& path, const MediaLimits& limits = {});

// Mono 16 kHz samples -> frames [ceil(n / 640), 640], the tail zero-padded (every frame is valid).
std::vector<float> audio_frames(std::span<const float> samples);

}  // namespace ug
