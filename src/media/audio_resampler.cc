#include "media/audio_resampler.h"

#include <cmath>

#include "core/error.h"

#if UG_HAVE_SOXR
#include <soxr.h>
#endif

namespace ug {

#if UG_HAVE_SOXR

SoxrResampler::SoxrResampler(double in_rate, double out_rate, std::string_view what)
    : ratio_(out_rate / in_rate), what_(what) {
  soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  soxr_quality_spec_t q = soxr_quality_spec(SOXR_VHQ, 0);
  soxr_runtime_spec_t rt =
      soxr_runtime_spec(1);  // one thread: the caller decides about parallelism
  soxr_error_t err = nullptr;
  soxr_ = soxr_create(in_rate, out_rate, 1, &err, &io, &q, &rt);
  if (err || !soxr_) {
    soxr_delete(soxr_);
    fail("{}: cannot resample {} Hz to {} Hz: libsoxr says {}", what_, in_rate, out_rate,
         err ? err : "?");
  }
}

SoxrResampler::~SoxrResampler() { soxr_delete(soxr_); }

// soxr consumes input and produces output at its own pace; loop until it has taken all of `in` (n >
// 0) or, when flushing (in == nullptr), until it has nothing left to give.
void SoxrResampler::process(const float* in, size_t n, std::vector<float>& out) {
  size_t taken = 0;
  while (true) {
    const size_t room = size_t(std::ceil(double(n - taken) * ratio_)) + 1024;
    const size_t base = out.size();
    out.resize(base + room);
    size_t idone = 0, odone = 0;
    soxr_error_t err = soxr_process(soxr_, in ? in + taken : nullptr, n - taken, &idone,
                                    out.data() + base, room, &odone);
    out.resize(base + odone);
    if (err) fail("{}: resampling failed: libsoxr says {}", what_, err);
    taken += idone;
    if (in ? taken >= n : odone == 0) return;
  }
}

void SoxrResampler::push(std::span<const float> in, std::vector<float>& out) {
  if (!in.empty()) process(in.data(), in.size(), out);
}

void SoxrResampler::flush(std::vector<float>& out) { process(nullptr, 0, out); }

#else  // !UG_HAVE_SOXR

SoxrResampler::SoxrResampler(double in_rate, double, std::string_view what)
    : ratio_(0), what_(what) {
  fail(
      "{}: the audio is {} Hz and this build has no libsoxr to resample it to 16 kHz (install "
      "libsoxr-dev "
      "and rebuild, or pass 16 kHz audio)",
      what_, in_rate);
}
SoxrResampler::~SoxrResampler() = default;
void SoxrResampler::process(const float*, size_t, std::vector<float>&) {}
void SoxrResampler::push(std::span<const float>, std::vector<float>&) {}
void SoxrResampler::flush(std::vector<float>&) {}

#endif  // UG_HAVE_SOXR

}  // namespace ug
