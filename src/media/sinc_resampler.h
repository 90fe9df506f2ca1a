// torchaudio.functional.resample's default algorithm (lowpass_filter_width 6, rolloff 0.99,
// "sinc_interp_hann"), the resampler HF's Gemma 4 audio reference uses, computed in streaming
// polyphase form.
//
// The rates are reduced by their gcd to orig:new; the cutoff is base = min(orig, new) * 0.99 (in
// units of the reduced rates) and width = ceil(6 * orig / base). Output m = k * new + i (phase i) is
//   y[m] = sum_j K[i][j] * xpad[k * orig + j],  j in [0, 2 * width + orig),
// xpad being the input with `width` zeros on the left and zeros on the right, and
//   K[i][j] = sinc(pi t) * cos(pi t / 12)^2 * base / orig,  t = clamp(base * ((j - width) / orig - i / new), -6, 6)
// evaluated in float32 step by step as torchaudio does for a float32 waveform. The output holds
// ceil(new * n / orig) samples (torchaudio's length rule). Taps where t is clamped (|t| >= 6, values
// below 1e-20) are left out, so a phase has ~12 * orig / base taps instead of 2 * width + orig; the
// sums are accumulated in float32 in a fixed order, so the output is the same for any split of the
// input into pushes, and within float rounding of torchaudio's conv1d.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "media/audio_resampler.h"

namespace ug {

class SincResampler final : public AudioResampler {
 public:
  // Throws ug::Error naming `what` for a rate <= 0 or rates whose reduced ratio needs a polyphase
  // table beyond 64 MiB (e.g. 2'000'003 Hz -> 16 kHz; every common rate needs under 1 MiB).
  SincResampler(int64_t in_rate, int64_t out_rate, std::string_view what);

  void push(std::span<const float> in, std::vector<float>& out) override;
  void flush(std::vector<float>& out) override;

  // torchaudio's output length for n input samples: ceil(out_rate * n / in_rate).
  static int64_t output_length(int64_t in_rate, int64_t out_rate, int64_t n);
  int64_t taps_per_phase() const { return taps_; }  // after trimming, rounded up to a multiple of 8
  int64_t phases() const { return new_; }

 private:
  int64_t target(int64_t n) const;      // output_length for the reduced rates
  void produce(int64_t limit, std::vector<float>& out);

  int64_t orig_ = 1, new_ = 1;          // the rates divided by their gcd
  int64_t width_ = 0;                   // torchaudio's zero padding on the left
  int64_t taps_ = 0;                    // per phase, a multiple of kLanes
  std::vector<float> kernel_;           // [new_, taps_]
  std::vector<int64_t> offset_;         // [new_]: xpad index of phase i's first tap, block 0
  int64_t min_offset_ = 0, max_offset_ = 0;
  std::vector<float> buf_;              // xpad[base_, base_ + buf_.size())
  int64_t base_ = 0;
  int64_t n_in_ = 0;                    // input samples pushed
  int64_t n_out_ = 0;                   // output samples produced
  bool identity_ = false;               // equal rates: torchaudio returns the input unchanged
  std::string what_;
};

}  // namespace ug
