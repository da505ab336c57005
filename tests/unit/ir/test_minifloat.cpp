// float8 / float4 / E8M0 conversions (ir/minifloat.h) and the integer helpers of ir/dtype_traits.h.
// The encoder is checked against a brute-force reference: the nearest value among all codes of the format,
// ties to the even code, on random inputs across every binade, with and without saturation.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "ir/dtype_traits.h"
#include "ir/minifloat.h"

namespace kiln {
namespace {

const DataType kFormats[] = {DataType::kFP8, DataType::kFP8E5M2, DataType::kFP8E4M3FNUZ, DataType::kFP8E5M2FNUZ,
                             DataType::kFP4};

int num_codes(DataType t) { return t == DataType::kFP4 ? 16 : 256; }
bool has_inf(DataType t) { return t == DataType::kFP8E5M2; }
bool is_fnuz(DataType t) { return t == DataType::kFP8E4M3FNUZ || t == DataType::kFP8E5M2FNUZ; }

// Brute force: the finite code nearest to x (ties: even code), or a marker for overflow.
struct Ref {
  bool overflow = false;
  uint8_t code = 0;
};
Ref brute_force(DataType t, double x) {
  const double a = std::fabs(x);
  const bool neg = std::signbit(x);
  const int sign_bit = t == DataType::kFP4 ? 3 : 7;
  double best = std::numeric_limits<double>::infinity();
  int best_code = -1;
  for (int c = 0; c < num_codes(t) / 2; ++c) {  // the non-negative half
    const float v = minifloat_to_float(t, static_cast<uint8_t>(c));
    if (!std::isfinite(v)) continue;
    const double d = std::fabs(v - a);
    if (d < best || (d == best && (c & 1) == 0)) {
      best = d;
      best_code = c;
    }
  }
  // Beyond max: the next grid step above max would be the nearest -> overflow.
  const double max = minifloat_max(t);
  const double ulp = max - minifloat_to_float(t, static_cast<uint8_t>(float_to_minifloat(t, max) - 1));
  Ref r;
  if (a > max && (a - max > ulp / 2 || (a - max == ulp / 2 && (float_to_minifloat(t, max) & 1)))) r.overflow = true;
  r.code = static_cast<uint8_t>(best_code);
  if (neg && !(is_fnuz(t) && best_code == 0)) r.code |= static_cast<uint8_t>(1u << sign_bit);
  return r;
}

TEST(Minifloat, DecodeKnownValues) {
  EXPECT_EQ(minifloat_to_float(DataType::kFP8, 0x7e), 448.0f);
  EXPECT_EQ(minifloat_to_float(DataType::kFP8, 0x01), std::ldexp(1.0f, -9));  // smallest subnormal
  EXPECT_TRUE(std::isnan(minifloat_to_float(DataType::kFP8, 0x7f)));
  EXPECT_TRUE(std::isnan(minifloat_to_float(DataType::kFP8, 0xff)));
  EXPECT_EQ(minifloat_to_float(DataType::kFP8E5M2, 0x7b), 57344.0f);
  EXPECT_EQ(minifloat_to_float(DataType::kFP8E5M2, 0x7c), std::numeric_limits<float>::infinity());
  EXPECT_EQ(minifloat_to_float(DataType::kFP8E5M2, 0xfc), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(minifloat_to_float(DataType::kFP8E5M2, 0x7e)));
  EXPECT_EQ(minifloat_to_float(DataType::kFP8E4M3FNUZ, 0x7f), 240.0f);
  EXPECT_TRUE(std::isnan(minifloat_to_float(DataType::kFP8E4M3FNUZ, 0x80)));
  EXPECT_EQ(minifloat_to_float(DataType::kFP8E5M2FNUZ, 0x7f), 57344.0f);
  EXPECT_EQ(minifloat_to_float(DataType::kFP8E4M3FNUZ, 0x08), std::ldexp(1.0f, -7));
  const float fp4[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
  for (int c = 0; c < 8; ++c) {
    EXPECT_EQ(minifloat_to_float(DataType::kFP4, static_cast<uint8_t>(c)), fp4[c]);
    EXPECT_EQ(minifloat_to_float(DataType::kFP4, static_cast<uint8_t>(c | 8)), -fp4[c]);
  }
  EXPECT_EQ(minifloat_max(DataType::kFP8), 448.0);
  EXPECT_EQ(minifloat_max(DataType::kFP4), 6.0);
}

TEST(Minifloat, EveryFiniteCodeRoundTrips) {
  for (DataType t : kFormats) {
    for (int c = 0; c < num_codes(t); ++c) {
      const float v = minifloat_to_float(t, static_cast<uint8_t>(c));
      if (std::isnan(v)) continue;
      uint8_t want = static_cast<uint8_t>(c);
      if (t == DataType::kFP4 && c == 8) want = 8;  // -0 keeps its sign in E2M1
      EXPECT_EQ(float_to_minifloat(t, v, false), want) << dtype_name(t) << " code " << c << " value " << v;
    }
  }
}

TEST(Minifloat, EncodeMatchesBruteForce) {
  std::mt19937_64 rng(7);
  for (DataType t : kFormats) {
    const double max = minifloat_max(t);
    for (int n = 0; n < 20000; ++n) {
      // Log-uniform magnitudes from far below the smallest subnormal to beyond max, plus exact midpoints.
      double x = std::exp2(std::uniform_real_distribution<double>(-20.0, std::log2(max) + 2.0)(rng));
      if (n % 5 == 0) {  // a midpoint between two neighbouring codes: the tie rule decides
        const int c = std::uniform_int_distribution<int>(0, num_codes(t) / 2 - 2)(rng);
        const double lo = minifloat_to_float(t, static_cast<uint8_t>(c)), hi = minifloat_to_float(t, static_cast<uint8_t>(c + 1));
        if (std::isfinite(lo) && std::isfinite(hi)) x = (lo + hi) / 2;
      }
      if (rng() & 1) x = -x;
      const Ref r = brute_force(t, x);
      for (bool sat : {true, false}) {
        const uint8_t got = float_to_minifloat(t, x, sat);
        if (!r.overflow || t == DataType::kFP4) {
          const uint8_t want = r.overflow ? static_cast<uint8_t>(float_to_minifloat(t, std::copysign(max, x))) : r.code;
          ASSERT_EQ(got, want) << dtype_name(t) << " x=" << x << " saturate=" << sat;
        } else if (sat) {
          ASSERT_EQ(minifloat_to_float(t, got), std::copysign(static_cast<float>(max), static_cast<float>(x))) << x;
        } else if (has_inf(t)) {
          ASSERT_TRUE(std::isinf(minifloat_to_float(t, got))) << x;
        } else {
          ASSERT_TRUE(std::isnan(minifloat_to_float(t, got))) << dtype_name(t) << " x=" << x;
        }
      }
    }
  }
}

TEST(Minifloat, SpecialValuesFollowOnnxCastTables) {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  // saturate = 1: Inf -> +-max
  EXPECT_EQ(float_to_minifloat(DataType::kFP8, inf, true), 0x7e);
  EXPECT_EQ(float_to_minifloat(DataType::kFP8, -inf, true), 0xfe);
  EXPECT_EQ(float_to_minifloat(DataType::kFP8E5M2, inf, true), 0x7b);
  EXPECT_EQ(float_to_minifloat(DataType::kFP8E4M3FNUZ, -inf, true), 0xff);
  // saturate = 0: Inf -> NaN, except E5M2 which has Inf
  EXPECT_EQ(float_to_minifloat(DataType::kFP8, inf, false), 0x7f);
  EXPECT_EQ(float_to_minifloat(DataType::kFP8, -inf, false), 0xff);
  EXPECT_EQ(float_to_minifloat(DataType::kFP8E5M2, -inf, false), 0xfc);
  EXPECT_EQ(float_to_minifloat(DataType::kFP8E5M2FNUZ, inf, false), 0x80);
  // 464 is the midpoint of 448 (even code) and the NaN code: ties to even keep 448
  EXPECT_EQ(float_to_minifloat(DataType::kFP8, 464.0, false), 0x7e);
  EXPECT_EQ(float_to_minifloat(DataType::kFP8, 465.0, false), 0x7f);
  // NaN keeps its sign where the format has signed NaNs; FNUZ has one NaN; -0 has no FNUZ code
  EXPECT_EQ(float_to_minifloat(DataType::kFP8, nan), 0x7f);
  EXPECT_EQ(float_to_minifloat(DataType::kFP8, -nan), 0xff);
  EXPECT_EQ(float_to_minifloat(DataType::kFP8E5M2, nan), 0x7e);
  EXPECT_EQ(float_to_minifloat(DataType::kFP8E4M3FNUZ, -nan), 0x80);
  EXPECT_EQ(float_to_minifloat(DataType::kFP8E4M3FNUZ, -0.0), 0x00);
  EXPECT_EQ(float_to_minifloat(DataType::kFP8E5M2FNUZ, -1e-30), 0x00);
  EXPECT_EQ(float_to_minifloat(DataType::kFP8, -0.0), 0x80);
  // float4 always saturates
  EXPECT_EQ(float_to_minifloat(DataType::kFP4, 100.0, false), 0x7);
  EXPECT_EQ(float_to_minifloat(DataType::kFP4, -inf, false), 0xf);
  EXPECT_EQ(float_to_minifloat(DataType::kFP4, 2.5), 0x4);   // tie between 2 and 3: even code (2)
  EXPECT_EQ(float_to_minifloat(DataType::kFP4, 0.25), 0x0);  // tie between 0 and 0.5
  EXPECT_EQ(float_to_minifloat(DataType::kFP4, 0.26), 0x1);
}

TEST(Minifloat, E8M0) {
  EXPECT_EQ(e8m0_to_float(127), 1.0f);
  EXPECT_EQ(e8m0_to_float(130), 8.0f);
  EXPECT_EQ(e8m0_to_float(0), std::ldexp(1.0f, -127));
  EXPECT_TRUE(std::isnan(e8m0_to_float(255)));
  EXPECT_EQ(float_to_e8m0(8.0f), 130);
  EXPECT_EQ(float_to_e8m0(9.0f), 131);                          // up (default)
  EXPECT_EQ(float_to_e8m0(9.0f, true, E8M0Round::kDown), 130);
  EXPECT_EQ(float_to_e8m0(11.0f, true, E8M0Round::kNearest), 130);
  EXPECT_EQ(float_to_e8m0(13.0f, true, E8M0Round::kNearest), 131);
  EXPECT_EQ(float_to_e8m0(-8.0f), 130);  // magnitude only
  EXPECT_EQ(float_to_e8m0(std::numeric_limits<float>::infinity()), 255);
  EXPECT_EQ(float_to_e8m0(std::numeric_limits<float>::quiet_NaN()), 255);
  EXPECT_EQ(float_to_e8m0(std::numeric_limits<float>::max(), true), 254);   // saturates at 2^127
  EXPECT_EQ(float_to_e8m0(std::numeric_limits<float>::max(), false), 255);  // rounds past it: NaN
  EXPECT_EQ(float_to_e8m0(0.0f), 0);
}

TEST(DtypeTraits, IntegerRangesAndWrap) {
  EXPECT_EQ(dtype_int_min(DataType::kINT4), -8);
  EXPECT_EQ(dtype_int_max(DataType::kINT4), 7);
  EXPECT_EQ(dtype_int_max(DataType::kUINT4), 15);
  EXPECT_EQ(dtype_int_min(DataType::kINT2), -2);
  EXPECT_EQ(dtype_int_max(DataType::kUINT16), 65535);
  EXPECT_EQ(dtype_int_min(DataType::kINT16), -32768);
  EXPECT_EQ(wrap_to_int(DataType::kINT4, 8), -8);
  EXPECT_EQ(wrap_to_int(DataType::kINT4, -9), 7);
  EXPECT_EQ(wrap_to_int(DataType::kUINT4, -1), 15);
  EXPECT_EQ(wrap_to_int(DataType::kINT2, 3), -1);
  EXPECT_EQ(wrap_to_int(DataType::kUINT2, 5), 1);
  EXPECT_EQ(wrap_to_int(DataType::kINT16, 40000), 40000 - 65536);
  EXPECT_TRUE(dtype_is_integer(DataType::kUINT64));
  EXPECT_FALSE(dtype_is_integer(DataType::kBOOL));
  EXPECT_TRUE(dtype_is_unsigned(DataType::kUINT2));
}

}  // namespace
}  // namespace kiln
