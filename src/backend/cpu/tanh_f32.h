// tanh for f32 without a libm call, written so that a loop over an array vectorizes (no branches, no calls):
// the final softcap (262,144 logits a token) and GeGLU (15,360 values a layer) spent most of a small model's
// CPU time in glibc's scalar tanhf / expm1f. Error within 3 ulp of the exact tanh (tests/backend/tanh_test.cc
// sweeps it against double precision); NaN stays NaN, +-inf gives +-1, -0 gives -0.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace ug::cpu {

inline float tanh_f32(float y) {
  const float a = std::fabs(y);
  // |y| < 1: the continued fraction tanh a = a / (1 + a²/(3 + a²/(5 + a²/(7 + a²/(9 + a²/11))))) folded into one
  // rational function of z = a² (relative error 4e-10 on [0, 1]: far below the f32 rounding).
  const float z = a * a;
  const float small = a * ((21.0f * z + 1260.0f) * z + 10395.0f) / (((z + 210.0f) * z + 4725.0f) * z + 10395.0f);
  // 1 <= |y| < 9.1: 1 - 2 / (e^(2a) + 1), with e^x = 2^n e^r, n = round(x / ln 2), |r| <= ln 2 / 2 (Cody-Waite:
  // n x kLn2Hi is exact for n < 2^12), e^r by its Taylor series to r^7 (truncation 6e-9 relative).
  constexpr float kLog2e = 1.44269502f, kLn2Hi = 0.693115234375f, kLn2Lo = 3.19461833e-05f;
  constexpr float kRound = 12582912.0f;          // 1.5 x 2^23: adding and subtracting it rounds to an integer
  const float x = 2.0f * (a < 9.1f ? a : 9.1f);  // clamped first: NaN must not reach the int conversion
  const float n = (x * kLog2e + kRound) - kRound;
  const float r = (x - n * kLn2Hi) - n * kLn2Lo;
  const float er =
      1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 +
                                          r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720 + r * (1.0f / 5040)))))));
  const float e2a = er * std::bit_cast<float>((int32_t(n) + 127) << 23);
  const float big = 1.0f - 2.0f / (e2a + 1.0f);
  float t = a < 1.0f ? small : big;
  t = a >= 9.1f ? 1.0f : t;  // from 9.02 on, tanh rounds to 1 in f32
  t = a != a ? a : t;        // NaN
  return std::copysign(t, y);
}

}  // namespace ug::cpu
