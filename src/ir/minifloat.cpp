#include "ir/minifloat.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace kiln {

namespace {

// How a format spends its all-ones exponent: kIeee keeps Inf and NaN there (E5M2); kFn uses it for
// normal numbers except the all-ones code, which is NaN (E4M3FN); kFnuz has one NaN, the "negative zero"
// code 0x80, and no Inf (E4M3FNUZ, E5M2FNUZ); kNone has no special values at all (float4 E2M1).
enum class Special { kIeee, kFn, kFnuz, kNone };

struct Format {
  int ebits, mbits, bias;
  Special special;

  int sign_shift() const { return ebits + mbits; }
  int min_exp() const { return 1 - bias; }  // exponent of the smallest normal number
  double max() const {
    const int top_field = (1 << ebits) - 1;
    switch (special) {
      case Special::kIeee: return std::ldexp(2.0 - std::ldexp(1.0, -mbits), top_field - 1 - bias);
      case Special::kFn: return std::ldexp(2.0 - std::ldexp(1.0, 1 - mbits), top_field - bias);
      default: return std::ldexp(2.0 - std::ldexp(1.0, -mbits), top_field - bias);
    }
  }
  uint8_t nan(bool negative) const {
    const uint8_t sign = negative ? static_cast<uint8_t>(1u << sign_shift()) : 0;
    switch (special) {
      case Special::kIeee: return sign | static_cast<uint8_t>(((1u << ebits) - 1) << mbits) | (1u << (mbits - 1));
      case Special::kFn: return sign | static_cast<uint8_t>((1u << sign_shift()) - 1);
      case Special::kFnuz: return 0x80;
      case Special::kNone: return 0;
    }
    return 0;
  }
  uint8_t inf(bool negative) const {  // kIeee only
    return (negative ? static_cast<uint8_t>(1u << sign_shift()) : 0) | static_cast<uint8_t>(((1u << ebits) - 1) << mbits);
  }
};

Format format_of(DataType t) {
  switch (t) {
    case DataType::kFP8: return {4, 3, 7, Special::kFn};
    case DataType::kFP8E4M3FNUZ: return {4, 3, 8, Special::kFnuz};
    case DataType::kFP8E5M2: return {5, 2, 15, Special::kIeee};
    case DataType::kFP8E5M2FNUZ: return {5, 2, 16, Special::kFnuz};
    case DataType::kFP4: return {2, 1, 1, Special::kNone};
    default: throw Error(std::string("not a float8/float4 dtype: ") + dtype_name(t));
  }
}

}  // namespace

bool dtype_is_minifloat(DataType t) {
  return t == DataType::kFP8 || t == DataType::kFP8E4M3FNUZ || t == DataType::kFP8E5M2 ||
         t == DataType::kFP8E5M2FNUZ || t == DataType::kFP4;
}

double minifloat_max(DataType t) { return format_of(t).max(); }

float minifloat_to_float(DataType t, uint8_t code) {
  const Format f = format_of(t);
  const bool negative = (code >> f.sign_shift()) & 1;
  const unsigned field = (code >> f.mbits) & ((1u << f.ebits) - 1), mant = code & ((1u << f.mbits) - 1);
  const unsigned top = (1u << f.ebits) - 1;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  if (f.special == Special::kFnuz && code == 0x80) return nan;
  if (f.special == Special::kFn && (code & 0x7f) == 0x7f) return negative ? -nan : nan;
  if (f.special == Special::kIeee && field == top) {
    if (mant != 0) return negative ? -nan : nan;
    return negative ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity();
  }
  const double v = field == 0 ? std::ldexp(static_cast<double>(mant), f.min_exp() - f.mbits)
                              : std::ldexp(1.0 + std::ldexp(static_cast<double>(mant), -f.mbits),
                                           static_cast<int>(field) - f.bias);
  return static_cast<float>(negative ? -v : v);
}

uint8_t float_to_minifloat(DataType t, double x, bool saturate) {
  const Format f = format_of(t);
  if (std::isnan(x)) return f.nan(std::signbit(x));
  const bool negative = std::signbit(x);
  const double max = f.max();
  double a = std::fabs(x);
  const bool clamps = saturate || f.special == Special::kNone;
  if (std::isinf(a) && !clamps) return f.special == Special::kIeee ? f.inf(negative) : f.nan(negative);
  if (clamps) a = std::min(a, max);

  // Round to the format's precision at a's binade (subnormals share the smallest normal binade's quantum).
  double r = 0.0;
  if (a > 0.0) {
    int e;
    std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
    const int quantum_exp = std::max(e - 1, f.min_exp()) - f.mbits;
    r = std::ldexp(std::nearbyint(std::ldexp(a, -quantum_exp)), quantum_exp);  // exact scaling; ties to even
  }
  if (r > max) return f.special == Special::kIeee ? f.inf(negative) : f.nan(negative);

  const uint8_t sign = negative ? static_cast<uint8_t>(1u << f.sign_shift()) : 0;
  if (r == 0.0) return f.special == Special::kFnuz ? 0 : sign;  // FNUZ's "-0" code is its NaN
  int e;
  std::frexp(r, &e);
  const int exp = e - 1;
  unsigned field, mant;
  if (exp < f.min_exp()) {
    field = 0;
    mant = static_cast<unsigned>(std::ldexp(r, f.mbits - f.min_exp()));
  } else {
    field = static_cast<unsigned>(exp + f.bias);
    mant = static_cast<unsigned>(std::ldexp(r, f.mbits - exp)) - (1u << f.mbits);
  }
  return sign | static_cast<uint8_t>(field << f.mbits) | static_cast<uint8_t>(mant);
}

float e8m0_to_float(uint8_t code) {
  if (code == 0xff) return std::numeric_limits<float>::quiet_NaN();
  return std::ldexp(1.0f, static_cast<int>(code) - 127);
}

uint8_t float_to_e8m0(float x, bool saturate, E8M0Round mode) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  uint32_t exp = (bits >> 23) & 0xff;
  if (exp == 0xff) return 0xff;  // NaN and Inf
  bool round_up = false;
  if (mode == E8M0Round::kUp) {
    round_up = (bits & 0x7fffff) != 0;
  } else if (mode == E8M0Round::kNearest) {
    // The reference's rule: the guard bit decides, unless it is a tie at exponent 0 (then down).
    const bool guard = bits & 0x400000, round = bits & 0x200000, sticky = bits & 0x1fffff;
    round_up = guard && (round || sticky || exp > 0);
  }
  if (round_up && !(saturate && exp == 0xfe)) ++exp;  // exp 0xfe + 1 is 0xff: NaN without saturate
  return static_cast<uint8_t>(exp);
}

}  // namespace kiln
