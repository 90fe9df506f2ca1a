// libFuzzer target: the input is a whole audio file (any container FFmpeg demuxes). A ug::Error is
// the expected outcome for bad input; any other exception, crash, sanitizer report or a clip that
// breaks the decoder's promises (length within the limit, frames of 640) is a bug. Seeds:
// fuzz/corpus/audio.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "core/error.h"
#include "media/audio_decode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A copy in an exactly-sized heap block lets ASan catch any read past the end of the "file".
  std::vector<uint8_t> file(data, data + size);
  ug::MediaLimits limits;
  limits.max_audio_seconds = 60;
  limits.max_file_bytes = 1 << 20;
  try {
    ug::AudioClip clip = ug::decode_audio(file, limits, "fuzz input");
    // 60 s at the source rate resamples to at most 60 s at 16 kHz (+ a little rounding).
    if (clip.samples.size() > size_t(limits.max_audio_seconds * ug::kAudioSampleRate) + 16)
      std::abort();
    std::vector<float> frames = ug::audio_frames(clip.samples);
    if (frames.size() % ug::kAudioFrameSamples != 0 || frames.size() < clip.samples.size())
      std::abort();
  } catch (const ug::Error&) {
  }
  return 0;
}
