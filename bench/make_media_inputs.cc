// Writes the inputs of the media preprocessing benchmark (docs/perf.md): 60 s of 44.1 kHz stereo "music"
// (a few tones with slow vibrato and tremolo, plus a little noise; deterministic) as
//   DIR/bench_60s_44k.mp3   (libmp3lame, 128 kb/s)  - what the benchmark decodes
//   DIR/bench_60s_44k.wav   (16-bit PCM)            - the same without MP3 decoding cost; HF's input (the
//                                                     GPU machine has no MP3 decoder for Python)
// Usage: make_media_inputs DIR
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>

#include "media/av_test_encode.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const int rate = 44100;
  const int64_t n = int64_t(rate) * 60;
  std::vector<std::vector<float>> ch(2, std::vector<float>(size_t(n)));
  std::mt19937 rng(7);
  std::normal_distribution<float> noise(0.0f, 0.01f);
  const double tones[] = {220.0, 277.18, 329.63, 440.0, 659.25};
  for (int64_t i = 0; i < n; ++i) {
    double t = double(i) / rate, l = 0, r = 0;
    for (int k = 0; k < 5; ++k) {
      double f = tones[k] * (1 + 0.003 * std::sin(2 * M_PI * 5.0 * t));
      double amp = 0.08 * (1 + 0.5 * std::sin(2 * M_PI * (0.2 + 0.1 * k) * t));
      double s = amp * std::sin(2 * M_PI * f * t);
      l += s * (k % 2 ? 0.7 : 1.0);
      r += s * (k % 2 ? 1.0 : 0.7);
    }
    ch[0][size_t(i)] = float(l) + noise(rng);
    ch[1][size_t(i)] = float(r) + noise(rng);
  }
  auto write = [&](const std::string& name, const std::vector<uint8_t>& bytes) {
    std::ofstream(dir + "/" + name, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                                            std::streamsize(bytes.size()));
    std::fprintf(stderr, "wrote %s/%s (%zu bytes)\n", dir.c_str(), name.c_str(), bytes.size());
  };
  write("bench_60s_44k.mp3", ug::test::encode_audio({.container = "mp3", .ext = "mp3", .codec = "libmp3lame",
                                                     .rate = rate, .bit_rate = 128000},
                                                    ch));
  write("bench_60s_44k.wav", ug::test::encode_audio({.rate = rate}, ch));
  return 0;
}
