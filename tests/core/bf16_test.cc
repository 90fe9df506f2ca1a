#include "core/bf16.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace ug {
namespace {

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  EXPECT_EQ(round_to_bf16(61.9677f), 62.0f);  // the reference embedding scale in bf16
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
}

// Every finite half round-trips exactly through f32, and f32 -> f16 rounds to the nearest half.
TEST(F16, RoundTripsEveryHalfAndRoundsToNearest) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    uint16_t v = uint16_t(h);
    if ((v & 0x7c00u) == 0x7c00u && (v & 0x3ffu)) continue;  // NaN payloads
    float f = f16_to_f32(v);
    ASSERT_EQ(f32_to_f16(f), v) << std::hex << h;
  }
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);  // rounds up to inf
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(1.0f + 1.0f / 2048), 0x3c00);  // tie -> even
  EXPECT_EQ(f32_to_f16(1.0f + 3.0f / 2048), 0x3c02);  // tie -> even (up)
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // half the smallest subnormal: tie -> 0
  EXPECT_EQ(f32_to_f16(std::ldexp(1.5f, -25)), 0x0001);
}

}  // namespace
}  // namespace ug
