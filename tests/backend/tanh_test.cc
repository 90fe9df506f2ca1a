// tanh_f32 (backend/cpu/tanh_f32.h) against tanh in double, and the activations built on it (ops.h) against
// their definitions.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "backend/cpu/ops.h"
#include "backend/cpu/tanh_f32.h"

namespace ug::cpu {
namespace {

float from_bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

// Error of t in units of the f32 spacing at the exactly rounded tanh(x).
double ulp_error(float x, float t) {
  const double exact = std::tanh(double(x));
  const float rounded = float(exact);
  const double ulp = double(std::nextafter(std::fabs(rounded), INFINITY)) - std::fabs(rounded);
  return std::fabs(double(t) - exact) / ulp;
}

// Every 61st positive f32 below +inf (5.5 M values: subnormals, the rational range below 1, the exponential range,
// saturation) and its negation: within 3 ulp, odd.
TEST(TanhF32, WithinThreeUlpOfTheExactValue) {
  double worst = 0;
  float worst_x = 0;
  for (uint32_t b = 0; b < 0x7f800000u; b += 61) {
    const float x = from_bits(b), t = tanh_f32(x);
    const double e = ulp_error(x, t);
    if (e > worst) {
      worst = e;
      worst_x = x;
    }
    ASSERT_EQ(tanh_f32(-x), -t) << "x " << x;
  }
  EXPECT_LE(worst, 3.0) << "at x = " << worst_x;
  // The method boundaries (1 and 9.1) and their neighbours.
  for (float x : {1.0f, 9.1f, 9.02f})
    for (float y : {std::nextafter(x, 0.0f), x, std::nextafter(x, INFINITY)}) EXPECT_LE(ulp_error(y, tanh_f32(y)), 3.0);
}

TEST(TanhF32, SpecialValues) {
  EXPECT_EQ(tanh_f32(INFINITY), 1.0f);
  EXPECT_EQ(tanh_f32(-INFINITY), -1.0f);
  EXPECT_TRUE(std::isnan(tanh_f32(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_EQ(tanh_f32(0.0f), 0.0f);
  EXPECT_TRUE(std::signbit(tanh_f32(-0.0f)));
  EXPECT_EQ(tanh_f32(1e-30f), 1e-30f);  // tanh x = x below ~1e-4 in f32
  EXPECT_EQ(tanh_f32(20.0f), 1.0f);
}

// The loops (vectorized, one clone per instruction set) give what the formula gives element by element.
TEST(TanhF32, SoftcapAndGeluFollowTheirFormulas) {
  std::vector<float> x, up;
  for (int i = -3000; i <= 3000; ++i) {
    x.push_back(float(i) * 0.0137f);
    up.push_back(1.0f + float(i % 7));
  }
  x.push_back(std::numeric_limits<float>::quiet_NaN());
  up.push_back(1.0f);
  std::vector<float> capped = x;
  softcap(capped.data(), int64_t(capped.size()), 30.0f);
  std::vector<float> gelu(x.size());
  gelu_tanh_mul(x.data(), up.data(), gelu.data(), int64_t(x.size()));
  for (size_t i = 0; i + 1 < x.size(); ++i) {
    EXPECT_EQ(capped[i], 30.0f * tanh_f32(x[i] / 30.0f)) << "x " << x[i];
    const double z = x[i], exact_gelu = 0.5 * z * (1.0 + std::tanh(0.7978845608028654 * (z + 0.044715 * z * z * z)));
    EXPECT_NEAR(gelu[i], exact_gelu * up[i], 1e-6 * (std::fabs(exact_gelu * up[i]) + std::fabs(z * up[i])))
        << "x " << x[i];
  }
  EXPECT_TRUE(std::isnan(capped.back()));
  EXPECT_TRUE(std::isnan(gelu.back()));
}

}  // namespace
}  // namespace ug::cpu
