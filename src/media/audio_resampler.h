// Streaming sample-rate conversion of mono float audio, internal to the audio decoder: chunks go in as
// they are decoded, so memory stays linear in the output; flush() ends the input and appends the rest.
// Two implementations behind one interface (audio_decode.h's Resampler picks):
//   SincResampler (sinc_resampler.h): torchaudio.functional.resample's default, the HF reference.
//   SoxrResampler (here): libsoxr at its very-high-quality setting (SOXR_VHQ: 28-bit precision, linear
//     phase, ~91% passband); the output holds round(n * out_rate / in_rate) samples (soxr's length rule).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

struct soxr;  // soxr.h's soxr_t is `struct soxr*`; kept out of this header so it builds without
              // libsoxr

namespace ug {

class AudioResampler {
 public:
  virtual ~AudioResampler() = default;
  virtual void push(std::span<const float> in, std::vector<float>& out) = 0;  // appends what is ready
  virtual void flush(std::vector<float>& out) = 0;  // end of input: appends the rest
};

class SoxrResampler final : public AudioResampler {
 public:
  // Throws ug::Error naming `what` when soxr rejects the rates or this build has no libsoxr.
  SoxrResampler(double in_rate, double out_rate, std::string_view what);
  ~SoxrResampler() override;
  SoxrResampler(const SoxrResampler&) = delete;
  SoxrResampler& operator=(const SoxrResampler&) = delete;

  void push(std::span<const float> in, std::vector<float>& out) override;
  void flush(std::vector<float>& out) override;

 private:
  void process(const float* in, size_t n, std::vector<float>& out);

  soxr* soxr_ = nullptr;
  double ratio_;
  std::string what_;
};

}  // namespace ug
