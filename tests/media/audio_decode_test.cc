// Audio decoding (FFmpeg) + downmix + 16 kHz resampling (torchaudio's sinc, or libsoxr) vs the HF fixtures in tests/data,
// and vs known signals encoded here with libavcodec (WAV int16/24/32/float64, FLAC, MP3, Opus, AAC,
// Vorbis).
#include "media/audio_decode.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <numbers>
#include <numeric>

#include "core/error.h"
#include "core/mapped_file.h"
#include "io/npy.h"
#include "media/audio_resampler.h"
#include "media/av_test_encode.h"
#include "media/media_test_util.h"
#include "media/sinc_resampler.h"
#include "test_util.h"

namespace ug {
namespace {

using ::testing::HasSubstr;

class AudioDecode : public test::FfmpegTest {};

// A build without libsoxr skips the Resampler::Soxr checks.
bool soxr_built_in() {
  try {
    SoxrResampler probe(44100, 16000, "probe");
  } catch (const Error&) {
    return false;
  }
  return true;
}

template <typename Param>
using DecoderTestWithParam = test::FfmpegTestWithParam<Param>;
using test::file_bytes;

// 10 * log10(|ref|^2 / |ref - x|^2) over ref's samples [from, to).
double snr_db(std::span<const float> ref, std::span<const float> x, size_t from, size_t to) {
  double s = 0, e = 0;
  for (size_t i = from; i < to; ++i) {
    s += double(ref[i]) * ref[i];
    e += (double(ref[i]) - x[i]) * (double(ref[i]) - x[i]);
  }
  return 10 * std::log10(s / std::max(e, 1e-30));
}

// The best SNR of x shifted by a lag in [-max_lag, max_lag] against ref (codec priming delays lossy
// output), over ref[from, to).
double aligned_snr_db(std::span<const float> ref, std::span<const float> x, size_t from, size_t to,
                      int max_lag) {
  double best = -1e9;
  for (int lag = -max_lag; lag <= max_lag; ++lag) {
    const int64_t lo = std::max<int64_t>(int64_t(from), -int64_t(lag));
    const int64_t hi = std::min<int64_t>(int64_t(to), int64_t(x.size()) - lag);
    if (hi - lo < int64_t(to - from) / 2) continue;
    best = std::max(best, snr_db(ref.subspan(size_t(lo), size_t(hi - lo)),
                                 x.subspan(size_t(lo + lag), size_t(hi - lo)), 0, size_t(hi - lo)));
  }
  return best;
}

// 0.5 sin(2 pi 440 t) + 0.25 sin(2 pi 1000 t): well inside every codec's passband.
std::vector<float> two_tones(int rate, double seconds, double phase = 0) {
  std::vector<float> x(size_t(std::llround(rate * seconds)));
  for (size_t i = 0; i < x.size(); ++i) {
    const double t = double(i) / rate;
    x[i] = float(0.5 * std::sin(2 * std::numbers::pi * 440 * t + phase) +
                 0.25 * std::sin(2 * std::numbers::pi * 1000 * t));
  }
  return x;
}

TEST(AudioFrames, PadsTheTail) {
  EXPECT_TRUE(audio_frames({}).empty());
  std::vector<float> x(641, 1.0f);
  auto f = audio_frames(x);
  ASSERT_EQ(f.size(), 2u * 640);
  EXPECT_EQ(f[640], 1.0f);
  EXPECT_EQ(f[641], 0.0f);
  EXPECT_EQ(f.back(), 0.0f);
}

// The float WAV HF read: frames equal HF's [33, 640] bit for bit.
TEST_F(AudioDecode, FloatWavMatchesHFFrames) {
  AudioClip clip = decode_audio_file(test::data_path("media/tone_16k_f32.wav"));
  EXPECT_EQ(clip.source_rate, 16000);
  EXPECT_EQ(clip.source_channels, 1);
  EXPECT_EQ(clip.codec, "pcm_f32le");
  auto ref = read_npy(test::data_path("preprocess/tone_16k.frames.npy"));
  ASSERT_EQ(ref.shape, (std::vector<int64_t>{33, 640}));
  auto frames = audio_frames(clip.samples);
  ASSERT_EQ(frames.size(), size_t(ref.numel()));
  EXPECT_EQ(0, std::memcmp(frames.data(), ref.bytes.data(), ref.bytes.size()));
}

// The same tone stored as int16 (the fixture writer scaled by 32767, libsndfile's float -> int16
// rule): decoded samples are s / 32768 exactly, so they sit within (0.5 + |x|) / 32768 of the float
// tone.
TEST_F(AudioDecode, Int16WavIsExactlyScaled) {
  AudioClip clip = decode_audio_file(test::data_path("media/tone_16k_i16.wav"));
  EXPECT_EQ(clip.codec, "pcm_s16le");
  auto ref = npy_as_f32(read_npy(test::data_path("preprocess/tone_16k.frames.npy")));
  auto frames = audio_frames(clip.samples);
  ASSERT_EQ(frames.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    const double s = double(frames[i]) * 32768;
    ASSERT_EQ(s, std::nearbyint(s)) << "sample " << i << " is not k / 32768";
    ASSERT_LE(std::fabs(s - double(ref[i]) * 32767), 0.5 + 1e-3)
        << "sample " << i;  // rounded from float64
    ASSERT_LE(std::fabs(double(frames[i]) - ref[i]), (0.501 + std::fabs(ref[i])) / 32768)
        << "sample " << i;
  }
}

// x convolved with a 6 kHz windowed-sinc lowpass at 16 kHz (255 taps, Blackman), edges dropped.
std::vector<float> lowpass_6k(std::span<const float> x) {
  constexpr int kHalf = 127;
  std::vector<double> h(2 * kHalf + 1);
  for (int k = -kHalf; k <= kHalf; ++k) {
    const double fc = 6000.0 / 16000, t = std::numbers::pi * k;
    const double sinc = k == 0 ? 2 * fc : std::sin(2 * fc * t) / t;
    const double w = 0.42 + 0.5 * std::cos(t / kHalf) + 0.08 * std::cos(2 * t / kHalf);
    h[size_t(k + kHalf)] = sinc * w;
  }
  std::vector<float> y;
  for (size_t i = kHalf; i + kHalf < x.size(); ++i) {
    double acc = 0;
    for (int k = -kHalf; k <= kHalf; ++k) acc += h[size_t(k + kHalf)] * x[i - size_t(k)];
    y.push_back(float(acc));
  }
  return y;
}

// 44.1 kHz stereo int16 -> mean -> 16 kHz, against torchaudio's default sinc resampler of the same mean
// (HF's reference). With Resampler::Sinc (the default) this is the same algorithm: equal length, and
// equal up to float32 rounding (torch's conv1d sums in another order).
TEST_F(AudioDecode, Stereo44kSincMatchesTorchaudioResample) {
  AudioClip clip = decode_audio_file(test::data_path("media/stereo_44k_i16.wav"));
  EXPECT_EQ(clip.source_rate, 44100);
  EXPECT_EQ(clip.source_channels, 2);
  auto ref = npy_as_f32(read_npy(test::data_path("preprocess/stereo_44k.mono16k_torchaudio.npy")));
  ASSERT_EQ(clip.samples.size(), ref.size());
  double max_err = 0, max_ref = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    max_err = std::max(max_err, std::fabs(double(clip.samples[i]) - ref[i]));
    max_ref = std::max(max_ref, std::fabs(double(ref[i])));
  }
  const double snr = snr_db(ref, clip.samples, 0, ref.size());
  std::printf("sinc: stereo 44.1 kHz -> 16 kHz: %zu samples, SNR %.1f dB vs torchaudio, max |error| %.3g (peak %.3g)\n",
              clip.samples.size(), snr, max_err, max_ref);
  EXPECT_GE(snr, 120.0);
  EXPECT_LE(max_err, 1e-6);
}

// The same with libsoxr VHQ. torchaudio's short (width 6) filter lets part of the signal's white noise
// (up to 22 kHz) alias into 6-8 kHz, which caps the full-band agreement near 38.6 dB. Below 6 kHz the
// two agree to ~60 dB.
TEST_F(AudioDecode, Stereo44kSoxrIsCloseToTorchaudioResample) {
  if (!soxr_built_in()) GTEST_SKIP() << "built without libsoxr";
  AudioClip clip = decode_audio_file(test::data_path("media/stereo_44k_i16.wav"), {},
                                     {.resampler = Resampler::Soxr});
  EXPECT_EQ(clip.source_rate, 44100);
  EXPECT_EQ(clip.source_channels, 2);
  auto ref = npy_as_f32(read_npy(test::data_path("preprocess/stereo_44k.mono16k_torchaudio.npy")));
  EXPECT_EQ(clip.samples.size(), ref.size());
  const size_t n = std::min(ref.size(), clip.samples.size());
  const double full = snr_db(ref, clip.samples, 0, n);
  auto ref_lp = lowpass_6k(std::span(ref).first(n));
  auto got_lp = lowpass_6k(std::span(clip.samples).first(n));
  const double below_6k = snr_db(ref_lp, got_lp, 0, ref_lp.size());
  std::printf(
      "soxr: stereo 44.1 kHz -> 16 kHz: %zu samples (torchaudio %zu), SNR %.1f dB full band, %.1f dB "
      "below 6 kHz\n",
      clip.samples.size(), ref.size(), full, below_6k);
  EXPECT_GE(full, 38.0);
  EXPECT_GE(below_6k, 50.0);
}

TEST(ResamplerNames, RoundTrip) {
  for (Resampler r : {Resampler::Sinc, Resampler::Soxr})
    EXPECT_EQ(parse_resampler(resampler_name(r)), r);
  EXPECT_EQ(parse_resampler("SINC"), std::nullopt);
  EXPECT_EQ(parse_resampler(""), std::nullopt);
  EXPECT_EQ(AudioDecodeOptions{}.resampler, Resampler::Sinc);
}

// A deterministic test signal: tones plus white noise over the whole band (so aliasing shows).
std::vector<float> tones_and_noise(int rate, int64_t n) {
  std::vector<float> x(static_cast<size_t>(n));
  uint32_t state = 12345;
  for (int64_t i = 0; i < n; ++i) {
    state = state * 1664525u + 1013904223u;
    const double noise = double(state >> 8) / double(1 << 24) - 0.5;
    const double t = double(i) / rate;
    x[size_t(i)] = float(0.4 * std::sin(2 * std::numbers::pi * 440 * t) +
                         0.2 * std::sin(2 * std::numbers::pi * 3000.5 * t) + 0.1 * noise);
  }
  return x;
}

// torchaudio.functional.resample written the way torchaudio computes it, without the polyphase
// trimming: the full [new, 2 * width + orig] kernel (float32 steps, as for a float32 waveform), the
// padded input, the strided convolution (summed in double here), the length rule.
std::vector<float> torchaudio_reference(std::span<const float> x, int64_t in_rate, int64_t out_rate) {
  const int64_t g = std::gcd(in_rate, out_rate), orig = in_rate / g, nw = out_rate / g;
  const double base = double(std::min(orig, nw)) * 0.99;
  const int64_t width = int64_t(std::ceil(double(6 * orig) / base));
  const int64_t span = 2 * width + orig;
  std::vector<float> kernel(size_t(nw * span));
  for (int64_t i = 0; i < nw; ++i)
    for (int64_t j = 0; j < span; ++j) {
      float t = float(-i) / float(nw) + float(j - width) / float(orig);
      t = std::clamp(t * float(base), -6.0f, 6.0f);
      float w = std::cos(t * float(std::numbers::pi) / 6.0f / 2.0f);
      w = w * w;
      t *= float(std::numbers::pi);
      const float sinc = t == 0.0f ? 1.0f : std::sin(t) / t;
      kernel[size_t(i * span + j)] = sinc * (w * float(base / double(orig)));
    }
  const int64_t n = int64_t(x.size());
  std::vector<float> padded(size_t(n + 2 * width + orig), 0.0f);
  std::copy(x.begin(), x.end(), padded.begin() + width);
  const int64_t blocks = (int64_t(padded.size()) - span) / orig + 1;
  const int64_t length = int64_t(std::ceil(double(nw * n) / double(orig)));
  std::vector<float> y;
  for (int64_t k = 0; k < blocks; ++k)
    for (int64_t i = 0; i < nw && int64_t(y.size()) < length; ++i) {
      double acc = 0;
      for (int64_t j = 0; j < span; ++j)
        acc += double(kernel[size_t(i * span + j)]) * padded[size_t(k * orig + j)];
      y.push_back(float(acc));
    }
  return y;
}

std::vector<float> sinc_resample(std::span<const float> x, int64_t in_rate, int64_t out_rate,
                                 std::span<const size_t> blocks) {
  SincResampler rs(in_rate, out_rate, "test");
  std::vector<float> y;
  size_t at = 0;
  for (size_t b = 0; at < x.size(); ++b) {
    const size_t len = std::min(blocks.empty() ? x.size() : blocks[b % blocks.size()], x.size() - at);
    rs.push(x.subspan(at, len), y);
    at += len;
  }
  rs.flush(y);
  return y;
}

// The trimmed polyphase form equals torchaudio's full computation to float rounding, at the rates
// audio arrives at, for lengths around the block boundaries (the length rule and the right padding).
TEST(SincResampler, MatchesTorchaudioAlgorithm) {
  for (int rate : {8000, 11025, 22050, 24000, 32000, 44100, 48000, 96000, 12345}) {
    for (int64_t n : {int64_t(0), int64_t(1), int64_t(2), int64_t(440), int64_t(441), int64_t(442),
                      int64_t(3001), int64_t(rate / 4)}) {
      auto x = tones_and_noise(rate, n);
      auto want = torchaudio_reference(x, rate, 16000);
      auto got = sinc_resample(x, rate, 16000, {});
      ASSERT_EQ(int64_t(got.size()), SincResampler::output_length(rate, 16000, n)) << rate << " Hz, n " << n;
      ASSERT_EQ(got.size(), want.size()) << rate << " Hz, n " << n;
      for (size_t i = 0; i < want.size(); ++i)
        ASSERT_NEAR(got[i], want[i], 2e-6) << rate << " Hz, n " << n << ", sample " << i;
    }
  }
}

// Any split of the input into pushes gives the one-shot output bit for bit.
TEST(SincResampler, StreamingEqualsOneShot) {
  for (int rate : {8000, 22050, 44100, 48000, 12345}) {
    auto x = tones_and_noise(rate, int64_t(rate) * 3 / 2 + 17);
    auto whole = sinc_resample(x, rate, 16000, {});
    const std::vector<std::vector<size_t>> splits = {
        {1}, {7}, {64}, {441}, {1000}, {4096}, {100000}, {1, 2, 3, 500, 1, 8191, 13}};
    for (const auto& blocks : splits) {
      auto parts = sinc_resample(x, rate, 16000, blocks);
      ASSERT_EQ(parts.size(), whole.size()) << rate << " Hz, blocks of " << blocks[0];
      EXPECT_EQ(0, std::memcmp(parts.data(), whole.data(), whole.size() * sizeof(float)))
          << rate << " Hz, blocks of " << blocks[0];
    }
  }
}

TEST(SincResampler, LengthsAndIdentity) {
  EXPECT_EQ(SincResampler::output_length(44100, 16000, 44100), 16000);
  EXPECT_EQ(SincResampler::output_length(44100, 16000, 1), 1);
  EXPECT_EQ(SincResampler::output_length(44100, 16000, 442), 161);  // ceil(160.36)
  EXPECT_EQ(SincResampler::output_length(8000, 16000, 3), 6);
  SincResampler rs(44100, 16000, "x");
  EXPECT_EQ(rs.phases(), 160);
  EXPECT_LE(rs.taps_per_phase(), 40);  // of torchaudio's 2 * 17 + 441
  auto x = tones_and_noise(16000, 999);
  EXPECT_EQ(sinc_resample(x, 16000, 16000, std::vector<size_t>{10}), x);  // equal rates: unchanged
  EXPECT_THROW(SincResampler(0, 16000, "x"), Error);
  EXPECT_THROW(SincResampler(2'000'003, 16000, "x"), Error);  // a 16000 x 1520 table: refused
  EXPECT_NO_THROW(SincResampler(96'001, 16000, "x"));         // 16000 x 80
}

// 60 s of 44.1 kHz mono: the time it takes (the test only prints it).
TEST(SincResampler, Speed) {
  auto x = tones_and_noise(44100, 60 * 44100);
  std::vector<float> y;
  const auto t0 = std::chrono::steady_clock::now();
  SincResampler rs(44100, 16000, "speed");
  for (size_t at = 0; at < x.size(); at += 4608)
    rs.push(std::span(x).subspan(at, std::min<size_t>(4608, x.size() - at)), y);
  rs.flush(y);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("sinc: 60 s of 44.1 kHz -> 16 kHz in %.1f ms (%zu samples)\n", ms, y.size());
  EXPECT_EQ(y.size(), 960000u);
}

#if UG_TEST_HAVE_FFMPEG

struct PcmCase {
  const char* name;
  const char* codec;
  AVSampleFormat fmt;
  double quantum;  // the stored sample step (2^-15 for int16, ...), 0 for floats
};

class ExactPcm : public DecoderTestWithParam<PcmCase> {};

// Lossless 16 kHz mono in every integer width and float64: decoded samples equal the stored values.
TEST_P(ExactPcm, DecodesStoredValues) {
  const PcmCase& c = GetParam();
  if (!test::have_encoder(c.codec)) GTEST_SKIP() << "no encoder " << c.codec;
  std::vector<float> x = two_tones(16000, 0.5);
  if (c.quantum > 0)  // representable in the stored width, so the encoder stores it exactly
    for (float& v : x) v = float(std::nearbyint(double(v) / c.quantum) * c.quantum);
  const std::vector<float>& want = x;
  const bool flac = std::string(c.codec) == "flac";
  test::AudioSpec spec{.container = flac ? "flac" : "wav",
                       .ext = flac ? "flac" : "wav",
                       .codec = c.codec,
                       .rate = 16000,
                       .sample_fmt = c.fmt};
  auto bytes = test::encode_audio(spec, {x});
  AudioClip clip = decode_audio(bytes, {}, c.name);
  EXPECT_EQ(clip.source_rate, 16000);
  ASSERT_EQ(clip.samples.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_EQ(clip.samples[i], want[i]) << c.name << " sample " << i;
}

INSTANTIATE_TEST_SUITE_P(
    Formats, ExactPcm,
    ::testing::Values(PcmCase{"wav_s16", "pcm_s16le", AV_SAMPLE_FMT_S16, 1.0 / 32768},
                      PcmCase{"wav_s24", "pcm_s24le", AV_SAMPLE_FMT_S32, 1.0 / (1 << 23)},
                      PcmCase{"wav_s32", "pcm_s32le", AV_SAMPLE_FMT_S32, 0x1p-31},
                      PcmCase{"wav_u8", "pcm_u8", AV_SAMPLE_FMT_U8, 1.0 / 128},
                      PcmCase{"wav_f32", "pcm_f32le", AV_SAMPLE_FMT_FLT, 0},
                      PcmCase{"wav_f64", "pcm_f64le", AV_SAMPLE_FMT_DBL, 0},
                      PcmCase{"flac_s16", "flac", AV_SAMPLE_FMT_S16, 1.0 / 32768}),
    [](const auto& info) { return std::string(info.param.name); });

// Downmix is the mean over channels (torchaudio/librosa), for stereo and 5.1, in packed and planar
// layouts.
TEST_F(AudioDecode, DownmixIsChannelMean) {
  for (int channels : {2, 6}) {
    std::vector<std::vector<float>> ch;
    for (int c = 0; c < channels; ++c) {
      auto x = two_tones(16000, 0.25, 0.7 * c);
      for (float& v : x) v = float(std::nearbyint(double(v) * (0.3 + 0.1 * c) * 32768) / 32768);
      ch.push_back(x);
    }
    for (const char* codec : {"pcm_s16le", "flac"}) {
      const bool flac = std::string(codec) == "flac";
      test::AudioSpec spec{
          .container = flac ? "flac" : "wav", .ext = flac ? "flac" : "wav", .codec = codec};
      AudioClip clip = decode_audio(test::encode_audio(spec, ch), {}, codec);
      EXPECT_EQ(clip.source_channels, channels);
      ASSERT_EQ(clip.samples.size(), ch[0].size());
      for (size_t i = 0; i < ch[0].size(); ++i) {
        double sum = 0;
        for (const auto& x : ch) sum += x[i];
        ASSERT_EQ(clip.samples[i], float(sum / channels))
            << codec << " " << channels << " channels, sample " << i;
      }
    }
  }
}

// 8, 22.05 and 48 kHz int16 -> 16 kHz with each resampler: its length rule (sinc: torchaudio's ceil,
// soxr: round) and clean tones (edges excluded); 16 kHz passes through unchanged.
TEST_F(AudioDecode, ResamplesToSixteenKilohertz) {
  for (Resampler r : {Resampler::Sinc, Resampler::Soxr}) {
    if (r == Resampler::Soxr && !soxr_built_in()) continue;
    for (int rate : {8000, 22050, 48000}) {
      for (double seconds : {1.0, 0.73}) {
        auto x = two_tones(rate, seconds);
        auto bytes = test::encode_audio({.rate = rate}, {x});
        AudioClip clip = decode_audio(bytes, {}, "resample", {.resampler = r});
        EXPECT_EQ(clip.source_rate, rate);
        const double exact = double(x.size()) * 16000 / rate;
        const auto want_len = r == Resampler::Sinc ? int64_t(std::ceil(exact)) : std::llround(exact);
        EXPECT_EQ(int64_t(clip.samples.size()), want_len) << resampler_name(r) << " " << rate << " Hz";
        auto ideal = two_tones(16000, double(want_len) / 16000);
        const size_t edge = 320;  // 20 ms: the signal starts and stops abruptly
        const double snr =
            snr_db(ideal, clip.samples, edge, std::min(ideal.size(), clip.samples.size()) - edge);
        std::printf("%s: %d Hz, %.2f s -> 16 kHz: SNR %.1f dB\n", resampler_name(r), rate, seconds, snr);
        // torchaudio's short filter has ~1e-4 passband ripple: ~70 dB on these tones.
        EXPECT_GE(snr, r == Resampler::Sinc ? 65.0 : 85.0) << resampler_name(r) << " " << rate << " Hz";
      }
    }
    std::vector<float> x = two_tones(16000, 0.5);
    for (float& v : x) v = float(std::nearbyint(double(v) * 32768) / 32768);
    AudioClip clip = decode_audio(test::encode_audio({}, {x}), {}, "16k", {.resampler = r});
    EXPECT_EQ(clip.samples, x) << resampler_name(r) << ": 16 kHz is not resampled";
  }
}

struct LossyCase {
  const char* name;
  const char* container;
  const char* ext;
  const char* codec;
  int rate;
  int channels;
  double min_snr_db;
};

class Lossy : public DecoderTestWithParam<LossyCase> {};

// Lossy codecs: the length within codec priming/padding and the tones recovered after aligning the
// delay.
TEST_P(Lossy, RecoversTones) {
  const LossyCase& c = GetParam();
  if (!test::have_encoder(c.codec)) GTEST_SKIP() << "no encoder " << c.codec;
  std::vector<std::vector<float>> ch(size_t(c.channels), two_tones(c.rate, 1.0));
  auto bytes = test::encode_audio({.container = c.container,
                                   .ext = c.ext,
                                   .codec = c.codec,
                                   .rate = c.rate,
                                   .bit_rate = 128000},
                                  ch);
  AudioClip clip = decode_audio(bytes, {}, c.name);
  EXPECT_EQ(clip.source_rate, c.rate);
  EXPECT_EQ(clip.source_channels, c.channels);
  EXPECT_NEAR(double(clip.samples.size()), 16000.0, 0.1 * 16000) << c.name;  // priming: < 0.1 s
  auto ideal = two_tones(16000, 1.0);
  const double snr = aligned_snr_db(ideal, clip.samples, 1600, 14400, 1200);
  std::printf("%s: %zu samples, aligned SNR %.1f dB\n", c.name, clip.samples.size(), snr);
  EXPECT_GE(snr, c.min_snr_db) << c.name;
}

INSTANTIATE_TEST_SUITE_P(
    Codecs, Lossy,
    ::testing::Values(LossyCase{"mp3_44k_stereo", "mp3", "mp3", "libmp3lame", 44100, 2, 20},
                      LossyCase{"opus_48k_mono", "ogg", "opus", "libopus", 48000, 1, 15},
                      LossyCase{"aac_m4a_44k", "ipod", "m4a", "aac", 44100, 2, 20},
                      LossyCase{"vorbis_ogg_44k", "ogg", "ogg", "libvorbis", 44100, 2, 20}),
    [](const auto& info) { return std::string(info.param.name); });

// Silence is valid audio: frames of zeros.
TEST_F(AudioDecode, SilenceDecodesToZeros) {
  std::vector<float> zeros(16000, 0.0f);
  AudioClip clip = decode_audio(test::encode_audio({}, {zeros}), {}, "silence.wav");
  ASSERT_EQ(clip.samples.size(), 16000u);
  for (float v : audio_frames(clip.samples)) ASSERT_EQ(v, 0.0f);
}

TEST_F(AudioDecode, ZeroSamplesIsAnEmptyClip) {
  auto bytes = test::encode_audio({}, {std::vector<float>{}});
  AudioClip clip = decode_audio(bytes, {}, "empty.wav");
  EXPECT_TRUE(clip.samples.empty());
  EXPECT_EQ(clip.source_rate, 16000);
}

TEST_F(AudioDecode, LimitsAreErrors) {
  auto bytes = test::encode_audio({.rate = 8000}, {two_tones(8000, 2.0)});
  MediaLimits limits;
  limits.max_audio_seconds = 1.5;
  try {
    decode_audio(bytes, limits, "long.wav");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("long.wav"));
    EXPECT_THAT(e.what(), HasSubstr("max_audio_seconds"));
  }
  // A streamed WAV (data size 0xFFFFFFFF) declares no length: the limit is checked while decoding.
  auto streamed = bytes;
  const auto data =
      std::search(streamed.begin(), streamed.end(), std::begin("data"), std::end("data") - 1);
  ASSERT_NE(data, streamed.end());
  std::fill(data + 4, data + 8, uint8_t(0xFF));
  EXPECT_EQ(decode_audio(streamed, {}, "streamed.wav").samples.size(), 32000u);
  try {
    decode_audio(streamed, limits, "streamed.wav");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("streamed.wav: the audio is longer than the limit of 1.5 s"));
  }
  limits = {};
  limits.max_file_bytes = 1000;
  EXPECT_THROW(
      {
        try {
          decode_audio(bytes, limits, "big.wav");
        } catch (const Error& e) {
          EXPECT_THAT(e.what(), HasSubstr("big.wav"));
          EXPECT_THAT(e.what(), HasSubstr("limit"));
          throw;
        }
      },
      Error);
}

// Truncated and corrupted files of several formats: each an error naming the file and the problem
// (a demuxer that stops quietly is caught by comparing with the duration the header declares).
TEST_F(AudioDecode, TruncatedOrCorruptFilesAreErrors) {
  struct Case {
    const char* name;
    test::AudioSpec spec;
  };
  const Case cases[] = {
      {"t.wav", {}},
      {"t.flac", {.container = "flac", .ext = "flac", .codec = "flac"}},
      {"t.mp3", {.container = "mp3", .ext = "mp3", .codec = "libmp3lame", .rate = 44100}},
      {"t.m4a", {.container = "ipod", .ext = "m4a", .codec = "aac", .rate = 44100}},
      {"t.opus", {.container = "ogg", .ext = "opus", .codec = "libopus", .rate = 48000}},
  };
  for (const Case& c : cases) {
    if (!test::have_encoder(c.spec.codec.c_str())) continue;
    auto bytes = test::encode_audio(c.spec, {two_tones(c.spec.rate, 1.0)});
    for (size_t cut : {bytes.size() / 2, bytes.size() / 2 + 1}) {
      try {
        decode_audio(std::span(bytes).first(cut), {}, c.name);
        ADD_FAILURE() << c.name << " cut to " << cut << " bytes: no error";
      } catch (const Error& e) {
        EXPECT_THAT(e.what(), HasSubstr(c.name));
        EXPECT_THAT(e.what(), ::testing::AnyOf(HasSubstr("truncated"), HasSubstr("Invalid data"),
                                               HasSubstr("not a media file")));
      }
    }
    if (c.spec.codec == "pcm_s16le") continue;  // flipped PCM bits are still valid PCM
    auto bad = bytes;
    for (size_t i = bad.size() / 2; i < bad.size() / 2 + 200; ++i) bad[i] ^= 0x5a;
    EXPECT_THROW(decode_audio(bad, {}, c.name), Error) << c.name << " corrupted";
  }
}

// Found by fuzz/audio_fuzz: a 2 KB WAV whose LIST chunk claims 2 GB made FFmpeg allocate and clear 2 GB.
TEST_F(AudioDecode, OversizedWavChunkIsAnError) {
  auto bytes = test::encode_audio({}, {two_tones(16000, 0.05)});
  const auto list = std::search(bytes.begin(), bytes.end(), std::begin("LIST"), std::end("LIST") - 1);
  ASSERT_NE(list, bytes.end());
  const uint8_t huge[4] = {0x1a, 0x00, 0x00, 0x80};
  std::copy(std::begin(huge), std::end(huge), list + 4);
  try {
    decode_audio(bytes, {}, "list.wav");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("list.wav: corrupt WAV file: chunk 'LIST' declares 2147483674 bytes"));
  }
}

#endif  // UG_TEST_HAVE_FFMPEG

// Each bad input is a ug::Error naming the input and the problem.
void expect_error(std::span<const uint8_t> bytes, const char* what, const char* problem) {
  try {
    AudioClip clip = decode_audio(bytes, {}, what);
    ADD_FAILURE() << what << ": no error, " << clip.samples.size() << " samples";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(what));
    EXPECT_THAT(e.what(), HasSubstr(problem));
  }
}

TEST_F(AudioDecode, BadInputs) {
  expect_error({}, "nothing.wav", "empty");
  std::vector<uint8_t> junk(3000);
  for (size_t i = 0; i < junk.size(); ++i) junk[i] = uint8_t(i * 2654435761u >> 13);
  expect_error(junk, "junk.bin", "not a media file");
  expect_error(file_bytes("media/video_ffv1.mkv"), "video_ffv1.mkv", "no audio stream");
  auto wav = file_bytes("media/tone_16k_i16.wav");
  expect_error(std::span(wav).first(30), "header_only.wav", "corrupt WAV file");
}

}  // namespace
}  // namespace ug
