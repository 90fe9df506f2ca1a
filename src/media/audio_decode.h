// Encoded audio (WAV int16/int24/int32/float, FLAC, MP3, Ogg/Opus/Vorbis, M4A/AAC, or the soundtrack of a
// video) -> mono float samples at 16 kHz, the input of Gemma 4's audio path (spec §5.1). Decoding is FFmpeg
// (libavformat/libavcodec), streamed packet by packet; channels are averaged (downmix = mean, as
// torchaudio/librosa do); resampling is torchaudio's default sinc resampler (the HF reference) or, on request,
// libsoxr at its very-high-quality setting. Samples are not normalised, dithered or clipped: int16 s becomes
// s / 32768 exactly.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "media/media_limits.h"

namespace ug {

constexpr int kAudioSampleRate = 16'000;
constexpr int64_t kAudioFrameSamples = 640;  // 40 ms: one soft token

// How audio at another rate becomes 16 kHz. 16 kHz input is never resampled.
enum class Resampler {
  Sinc,  // torchaudio.functional.resample's default (Hann-windowed sinc, width 6, rolloff 0.99): what HF
         // uses, reproduced to float rounding; output length ceil(n * 16000 / rate). Needs no library.
  Soxr,  // libsoxr, very high quality (sharper filter, less aliasing of 6-8 kHz; ~39 dB from HF on noise);
         // output length round(n * 16000 / rate). An error in a build without libsoxr.
};
const char* resampler_name(Resampler r);                         // "sinc" / "soxr"
std::optional<Resampler> parse_resampler(std::string_view name);  // "sinc" / "soxr", else nullopt

struct AudioDecodeOptions {
  Resampler resampler = Resampler::Sinc;
};

struct AudioClip {
  std::vector<float> samples;    // mono, kAudioSampleRate
  int64_t source_rate = 0;       // of the decoded stream
  int64_t source_channels = 0;
  std::string codec;             // FFmpeg codec name, for messages
};

// Throws ug::Error naming `what` for corrupt or truncated data, no audio stream, or a duration beyond
// `limits.max_audio_seconds`. An input with zero samples decodes to an empty clip (the caller decides).
// Truncation is caught where the container states the length (WAV data size, FLAC, MP3 Xing/Info, MP4, Ogg):
// decoding more than 0.1 s + 0.1% less than that is an error. The duration limit is checked against the header
// first and again while decoding (a streamed WAV or a bare MP3 states none), before memory grows past it.
// The best audio stream is used (av_find_best_stream), so the soundtrack of a video file works too.
AudioClip decode_audio(std::span<const uint8_t> bytes, const MediaLimits& limits, std::string_view what,
                       const AudioDecodeOptions& options = {});
AudioClip decode_audio_file(const std::string& path, const MediaLimits& limits = {},
                            const AudioDecodeOptions& options = {});

// Mono samples already decoded (e.g. a raw array) at `rate` -> 16 kHz with the chosen resampler.
std::vector<float> resample_to_16k(std::span<const float> mono, int64_t rate, Resampler kind, std::string_view what);

// Mono 16 kHz samples -> frames [ceil(n / 640), 640], the tail zero-padded (every frame is valid).
std::vector<float> audio_frames(std::span<const float> samples);

}  // namespace ug
