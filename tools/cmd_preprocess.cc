// unigemma preprocess: what the model's front-end sees, as .npy files comparable with HF's processors.
//   --image F  -> u8 [n, 6912] patches (row, col, channel order) + int64 [n, 2] (x, y) positions
//   --audio F  -> f32 [T, 640] frames at 16 kHz
//   --video F  -> u8 [frames, n, 6912] patches + int64 [n, 2] positions; frame indices and timestamps printed
// --repeat N times the whole decode + preprocess N times on this thread (for docs/perf.md).
#include <chrono>
#include <cstdio>

#include "command.h"
#include "core/error.h"
#include "io/npy.h"
#include "media/audio_decode.h"
#include "media/image_decode.h"
#include "media/image_preprocess.h"
#include "media/video_decode.h"
#include "media_args.h"

namespace ug::cli {
namespace {

struct PreprocessArgs {
  std::string image, audio, video, out, positions_out;
  int64_t repeat = 1;
  int64_t audio_rate = 0;  // --audio FILE.npy: the array's sample rate
};

std::string positions_path(const PreprocessArgs& a) {
  if (!a.positions_out.empty()) return a.positions_out;
  std::string base = a.out;
  if (base.size() > 4 && base.substr(base.size() - 4) == ".npy") base.resize(base.size() - 4);
  return base + ".positions.npy";
}

void write_positions(const std::string& path, const PatchGrid& g) {
  std::vector<int64_t> pos;
  for (int64_t i = 0; i < g.count(); ++i) pos.insert(pos.end(), {g.xs[size_t(i)], g.ys[size_t(i)]});
  write_npy(path, pos.data(), {g.count(), 2});
}

// Runs `fn` `repeat` times and reports the time per run of the last `repeat - 1` (the first warms caches).
template <typename Fn>
auto timed(const PreprocessArgs& a, const char* what, Fn&& fn) {
  auto result = fn();
  if (a.repeat <= 1) return result;
  auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 1; i < a.repeat; ++i) result = fn();
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "%s: %.2f ms per run (mean of %lld; decode on one thread, resize on %d)\n", what,
               ms / double(a.repeat - 1), (long long)(a.repeat - 1), ThreadPool::global().size());
  return result;
}

int preprocess_image_file(const PreprocessArgs& a, const MediaArgs& m) {
  const int64_t budget = m.image_tokens > 0 ? m.image_tokens : 280;
  const MediaOptions o = m.options();
  RgbImage img;
  PatchGrid g = timed(a, "decode + preprocess", [&] {
    img = decode_image_file(a.image, o.limits);
    return preprocess_image(img.rgb, img.size, budget, &ThreadPool::global());
  });
  ImageSize r = soft_token_size(img.size, budget);
  write_npy(a.out, g.pixels.data(), {g.count(), int64_t(g.pixels.size()) / std::max<int64_t>(1, g.count())});
  write_positions(positions_path(a), g);
  std::fprintf(stderr, "%s: %lldx%lld -> %lldx%lld, %lld soft tokens (budget %lld) -> %s\n", a.image.c_str(),
               (long long)img.size.width, (long long)img.size.height, (long long)r.width, (long long)r.height,
               (long long)g.count(), (long long)budget, a.out.c_str());
  return 0;
}

// A raw float array [samples] or [channels, samples] at --audio-rate: the same path minus decoding (what HF's
// processor gets when handed an array; used to compare with it where no decoder is installed).
AudioClip raw_audio(const PreprocessArgs& a, Resampler resampler) {
  UG_CHECK(a.audio_rate > 0, "{}: a .npy audio input needs --audio-rate", a.audio);
  NpyArray arr = read_npy(a.audio);
  std::vector<float> x = npy_as_f32(arr);
  UG_CHECK(arr.shape.size() == 1 || arr.shape.size() == 2, "{}: expected [samples] or [channels, samples], got {} dims",
           a.audio, arr.shape.size());
  const int64_t channels = arr.shape.size() == 2 ? arr.shape[0] : 1, n = arr.shape.back();
  std::vector<float> mono(size_t(n), 0.0f);
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t i = 0; i < n; ++i) mono[size_t(i)] += x[size_t(c * n + i)];
  for (float& v : mono) v /= float(channels);
  AudioClip clip{.source_rate = a.audio_rate, .source_channels = channels, .codec = "raw npy"};
  clip.samples = resample_to_16k(mono, a.audio_rate, resampler, a.audio);
  return clip;
}

int preprocess_audio_file(const PreprocessArgs& a, const MediaArgs& m) {
  AudioClip clip;
  const bool raw = a.audio.size() > 4 && a.audio.substr(a.audio.size() - 4) == ".npy";
  std::vector<float> frames = timed(a, raw ? "downmix + resample + frame" : "decode + resample + frame", [&] {
    clip = raw ? raw_audio(a, m.options().resampler)
               : decode_audio_file(a.audio, m.options().limits, {.resampler = m.options().resampler});
    return audio_frames(clip.samples);
  });
  const int64_t t = int64_t(frames.size()) / kAudioFrameSamples;
  write_npy(a.out, frames.data(), {t, kAudioFrameSamples});
  std::fprintf(stderr, "%s: %s, %lld Hz, %lld channel(s) -> %zu samples at 16 kHz, %lld soft tokens -> %s\n",
               a.audio.c_str(), clip.codec.c_str(), (long long)clip.source_rate, (long long)clip.source_channels,
               clip.samples.size(), (long long)t, a.out.c_str());
  return 0;
}

int preprocess_video_file(const PreprocessArgs& a, const MediaArgs& m) {
  const MediaOptions o = m.options();
  VideoFrames v = decode_video_file(a.video, o.video, o.limits);
  std::vector<uint8_t> all;
  PatchGrid g;
  for (const RgbImage& f : v.frames) {
    g = preprocess_image(f.rgb, f.size, o.video_frame_tokens, &ThreadPool::global());
    all.insert(all.end(), g.pixels.begin(), g.pixels.end());
  }
  const int64_t frames = int64_t(v.frames.size());
  write_npy(a.out, all.data(), {frames, g.count(), int64_t(g.pixels.size()) / std::max<int64_t>(1, g.count())});
  write_positions(positions_path(a), g);
  std::fprintf(stderr,
               "%s: %lld frames at %.3f fps; sampled %lld, %lld soft tokens each -> %s\nframes:", a.video.c_str(),
               (long long)v.total_frames, v.stream_fps, (long long)frames, (long long)g.count(), a.out.c_str());
  for (size_t i = 0; i < v.indices.size(); ++i)
    std::fprintf(stderr, " %lld@%.2fs", (long long)v.indices[i], v.timestamps[i]);
  std::fputc('\n', stderr);
  return 0;
}

int run_preprocess(const PreprocessArgs& a, const MediaArgs& m) {
  int given = !a.image.empty() + !a.audio.empty() + !a.video.empty();
  UG_CHECK(given == 1, "preprocess: give exactly one of --image, --audio or --video");
  if (!a.image.empty()) return preprocess_image_file(a, m);
  if (!a.audio.empty()) return preprocess_audio_file(a, m);
  return preprocess_video_file(a, m);
}

RegisterCommand reg(
    "preprocess",
    "Decode and preprocess one image, audio or video file into .npy (HF processor "
    "outputs)",
    [](CLI::App& sub) {
      auto a = std::make_shared<PreprocessArgs>();
      auto m = std::make_shared<MediaArgs>();
      sub.add_option("--image", a->image, "Image file")->type_name("PATH");
      sub.add_option("--audio", a->audio, "Audio file, or a float .npy [channels, samples]")->type_name("PATH");
      sub.add_option("--audio-rate", a->audio_rate, "Sample rate of a .npy --audio")->check(CLI::PositiveNumber);
      sub.add_option("--video", a->video, "Video file")->type_name("PATH");
      sub.add_option("--out,-o", a->out, "Output .npy (patches or frames)")->required();
      sub.add_option("--positions-out", a->positions_out, "Patch positions .npy (default: OUT with .positions.npy)");
      sub.add_option("--repeat", a->repeat, "Time N runs of decode + preprocess (first one warms)")
          ->check(CLI::PositiveNumber);
      add_media_options(sub, m, /*with_items=*/false);
      return [a, m] { return run_preprocess(*a, *m); };
    });

}  // namespace
}  // namespace ug::cli
