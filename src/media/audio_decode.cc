#include "media/audio_decode.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>

#include "core/error.h"
#include "core/mapped_file.h"
#include "media/audio_resampler.h"
#include "media/sinc_resampler.h"

#if UG_HAVE_FFMPEG
#include "media/av_input.h"
#endif

namespace ug {

std::vector<float> audio_frames(std::span<const float> samples) {
  const size_t frame = size_t(kAudioFrameSamples);
  const size_t n_frames = (samples.size() + frame - 1) / frame;
  std::vector<float> out(n_frames * frame, 0.0f);  // [n_frames, 640], tail zero-padded
  if (!samples.empty()) std::memcpy(out.data(), samples.data(), samples.size() * sizeof(float));
  return out;
}

const char* resampler_name(Resampler r) { return r == Resampler::Soxr ? "soxr" : "sinc"; }

std::optional<Resampler> parse_resampler(std::string_view name) {
  if (name == "sinc") return Resampler::Sinc;
  if (name == "soxr") return Resampler::Soxr;
  return std::nullopt;
}

AudioClip decode_audio_file(const std::string& path, const MediaLimits& limits,
                            const AudioDecodeOptions& options) {
  MappedFile file(path);
  UG_CHECK(int64_t(file.size()) <= limits.max_file_bytes,
           "{}: {} bytes exceeds the limit of {} bytes", path, file.size(), limits.max_file_bytes);
  return decode_audio({reinterpret_cast<const uint8_t*>(file.data()), file.size()}, limits, path,
                      options);
}

namespace {
std::unique_ptr<AudioResampler> make_resampler(int64_t rate, Resampler kind, std::string_view what) {
  if (kind == Resampler::Soxr) return std::make_unique<SoxrResampler>(double(rate), double(kAudioSampleRate), what);
  return std::make_unique<SincResampler>(rate, kAudioSampleRate, what);
}
}  // namespace

#if UG_HAVE_FFMPEG
namespace {

// Appends the channel mean of every sample of `f` to `out`. Integer formats are scaled by their
// full range as a power of two (int16 s -> s / 32768 exactly; int24 arrives as int32 << 8); floats
// pass unchanged.
template <typename T>
void append_mean(const AVFrame* f, int channels, bool planar, double scale, double offset,
                 std::vector<float>& out) {
  const int64_t n = f->nb_samples;
  const size_t base = out.size();
  out.resize(base + size_t(n));
  for (int64_t i = 0; i < n; ++i) {
    double sum = 0;  // exact for one channel of any of these formats, so mono int16 stays exact
    for (int c = 0; c < channels; ++c) {
      const T* src = planar ? reinterpret_cast<const T*>(f->extended_data[c]) + i
                            : reinterpret_cast<const T*>(f->extended_data[0]) + i * channels + c;
      sum += (double(*src) - offset) * scale;
    }
    out[base + size_t(i)] = float(sum / channels);
  }
}

void append_mono(const AVFrame* f, std::string_view what, std::vector<float>& out) {
  const int channels = f->ch_layout.nb_channels;
  UG_CHECK(channels > 0, "{}: decoded audio frame has no channels", what);
  const auto fmt = AVSampleFormat(f->format);
  const bool planar = av_sample_fmt_is_planar(fmt);
  switch (av_get_packed_sample_fmt(fmt)) {
    case AV_SAMPLE_FMT_U8:
      return append_mean<uint8_t>(f, channels, planar, 1.0 / 128, 128, out);
    case AV_SAMPLE_FMT_S16:
      return append_mean<int16_t>(f, channels, planar, 1.0 / 32768, 0, out);
    case AV_SAMPLE_FMT_S32:
      return append_mean<int32_t>(f, channels, planar, std::ldexp(1.0, -31), 0, out);
    case AV_SAMPLE_FMT_S64:
      return append_mean<int64_t>(f, channels, planar, std::ldexp(1.0, -63), 0, out);
    case AV_SAMPLE_FMT_FLT:
      return append_mean<float>(f, channels, planar, 1.0, 0, out);
    case AV_SAMPLE_FMT_DBL:
      return append_mean<double>(f, channels, planar, 1.0, 0, out);
    default: {
      const char* name = av_get_sample_fmt_name(fmt);
      fail("{}: unsupported decoded sample format '{}'", what, name ? name : "?");
    }
  }
}

// Streams decoded frames into the clip: downmix, limit check, resample.
class ClipBuilder {
 public:
  ClipBuilder(AudioClip& clip, const MediaLimits& limits, Resampler kind, std::string_view what)
      : clip_(clip), limits_(limits), kind_(kind), what_(what) {}

  void add(const AVFrame* f) {
    if (f->nb_samples <= 0) return;
    if (clip_.source_rate == 0) start(f->sample_rate);
    UG_CHECK(f->sample_rate == clip_.source_rate,
             "{}: the sample rate changes mid-stream ({} Hz -> {} Hz)", what_, clip_.source_rate,
             f->sample_rate);
    clip_.source_channels = std::max<int64_t>(clip_.source_channels, f->ch_layout.nb_channels);
    source_samples_ += f->nb_samples;
    UG_CHECK(double(source_samples_) <= limits_.max_audio_seconds * double(clip_.source_rate),
             "{}: the audio is longer than the limit of {} s (MediaLimits::max_audio_seconds)",
             what_, limits_.max_audio_seconds);
    if (!resampler_) return append_mono(f, what_, clip_.samples);
    chunk_.clear();
    append_mono(f, what_, chunk_);
    resampler_->push(chunk_, clip_.samples);
  }

  void finish() {
    if (resampler_) resampler_->flush(clip_.samples);
  }
  int64_t source_samples() const { return source_samples_; }

 private:
  void start(int rate) {
    UG_CHECK(rate > 0, "{}: the audio stream has no sample rate", what_);
    clip_.source_rate = rate;
    if (rate == kAudioSampleRate) return;
    resampler_ = make_resampler(rate, kind_, what_);
  }

  AudioClip& clip_;
  const MediaLimits& limits_;
  Resampler kind_;
  std::string_view what_;
  int64_t source_samples_ = 0;
  std::vector<float> chunk_;  // one frame's mono samples at the source rate
  std::unique_ptr<AudioResampler> resampler_;
};

// The stream duration the header states (WAV data size, FLAC STREAMINFO, MP3 Xing/Info, MP4, Ogg's
// last granule), in seconds; -1 when there is none or FFmpeg only estimated it from the bitrate.
double declared_seconds(const AVFormatContext* format, const AVStream* st) {
  if (st->duration == AV_NOPTS_VALUE || st->duration <= 0 || st->time_base.num <= 0 ||
      st->time_base.den <= 0)
    return -1;
  if (format->duration_estimation_method == AVFMT_DURATION_FROM_BITRATE) return -1;
  return double(st->duration) * av_q2d(st->time_base);
}

// FFmpeg demuxers stop quietly at the end of a truncated file, and an Ogg page with a bad checksum
// ends the stream early, so decoding much less than the declared duration is an error. Slack:
// codecs trim their priming/padding (tens of ms), so 0.1 s plus 0.1%.
void check_complete(double declared, int64_t samples, int64_t rate, std::string_view what) {
  if (declared < 0 || rate <= 0) return;
  const double decoded = double(samples) / double(rate);
  UG_CHECK(decoded >= declared - 0.1 - 0.001 * declared,
           "{}: the file is truncated or corrupt: its header declares {:.3f} s of audio but only "
           "{:.3f} s decode",
           what, declared, decoded);
}

// WAV chunk sizes, checked before FFmpeg sees the file: a chunk that claims more bytes than the file has
// makes FFmpeg's RIFF INFO reader allocate (and clear) that much (a 2 KB file could claim 2 GB, found by
// fuzz/audio_fuzz), and a cut-short file is otherwise read quietly, its length estimated from the file size.
// A data size of 0 or 0xFFFFFFFF marks a streamed WAV of unknown length: fine.
void check_wav_chunks(std::span<const uint8_t> bytes, std::string_view what) {
  auto u32 = [&](size_t at) {
    return uint32_t(bytes[at]) | uint32_t(bytes[at + 1]) << 8 | uint32_t(bytes[at + 2]) << 16 |
           uint32_t(bytes[at + 3]) << 24;
  };
  if (bytes.size() < 12 || std::memcmp(bytes.data(), "RIFF", 4) != 0 ||
      std::memcmp(bytes.data() + 8, "WAVE", 4) != 0)
    return;
  for (size_t at = 12; at + 8 <= bytes.size();) {
    const uint32_t size = u32(at + 4);
    const uint64_t have = bytes.size() - at - 8;
    if (std::memcmp(bytes.data() + at, "data", 4) == 0) {
      UG_CHECK(size == 0 || size == 0xFFFFFFFFu || size <= have,
               "{}: the WAV file is truncated: its data chunk declares {} bytes but only {} follow", what,
               size, have);
      return;
    }
    if (size > have) {
      std::string id(reinterpret_cast<const char*>(bytes.data() + at), 4);
      for (char& c : id) c = (c >= 0x20 && c < 0x7f) ? c : '?';
      fail("{}: corrupt WAV file: chunk '{}' declares {} bytes but only {} follow", what, id, size, have);
    }
    at += 8 + size_t(size) + (size & 1);  // chunks are padded to even sizes
  }
}

}  // namespace

AudioClip decode_audio(std::span<const uint8_t> bytes, const MediaLimits& limits,
                       std::string_view what, const AudioDecodeOptions& options) {
  UG_CHECK(int64_t(bytes.size()) <= limits.max_file_bytes,
           "{}: {} bytes exceeds the limit of {} bytes", what, bytes.size(), limits.max_file_bytes);
  check_wav_chunks(bytes, what);
  av::MemoryInput input(bytes, what);
  const int index = input.best_stream(AVMEDIA_TYPE_AUDIO);
  UG_CHECK(index >= 0, "{}: no audio stream in this {} file (it has: {})", what,
           input.container_name(), input.describe_streams());
  const AVStream* st = input.format()->streams[index];
  const double declared = declared_seconds(input.format(), st);
  UG_CHECK(
      declared <= limits.max_audio_seconds,
      "{}: the audio lasts {:.1f} s, beyond the limit of {} s (MediaLimits::max_audio_seconds)",
      what, declared, limits.max_audio_seconds);
  av::CodecContext dec =
      input.open_decoder(index, 1);  // one thread: cheap, and keeps FFmpeg's log lines
  AudioClip clip;
  clip.codec = avcodec_get_name(dec->codec_id);
  clip.source_channels = dec->ch_layout.nb_channels;
  ClipBuilder builder(clip, limits, options.resampler, what);
  auto on_frame = [&](AVFrame* f) {
    builder.add(f);
    return true;
  };
  av::Packet pkt = av::make_packet();
  av::Frame frame = av::make_frame();
  while (input.read_packet(index, pkt.get()))
    av::decode_packet(dec.get(), pkt.get(), frame.get(), what, on_frame);
  av::decode_packet(dec.get(), nullptr, frame.get(), what, on_frame);
  builder.finish();
  if (clip.source_rate == 0) clip.source_rate = st->codecpar->sample_rate;
  check_complete(declared, builder.source_samples(), clip.source_rate, what);
  return clip;
}

#else  // !UG_HAVE_FFMPEG

AudioClip decode_audio(std::span<const uint8_t>, const MediaLimits&, std::string_view what,
                       const AudioDecodeOptions&) {
  fail(
      "{}: this build has no FFmpeg support for audio (install the "
      "libavformat/libavcodec/libswresample "
      "development packages and libsoxr, e.g. scripts/install_deps.sh, and rebuild)",
      what);
}

#endif  // UG_HAVE_FFMPEG

std::vector<float> resample_to_16k(std::span<const float> mono, int64_t rate, Resampler kind, std::string_view what) {
  UG_CHECK(rate > 0, "{}: the sample rate must be positive, got {}", what, rate);
  if (rate == kAudioSampleRate) return {mono.begin(), mono.end()};
  auto resampler = make_resampler(rate, kind, what);
  std::vector<float> out;
  resampler->push(mono, out);
  resampler->flush(out);
  return out;
}

}  // namespace ug
