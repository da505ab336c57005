// The narrow float formats ONNX defines (float8 E4M3FN / E4M3FNUZ / E5M2 / E5M2FNUZ, float4 E2M1 and the
// power-of-two scale E8M0): decoding one code to float, and encoding a value with ONNX's Cast rules.
//
// Encoding rounds to nearest even. With `saturate` (ONNX's default), values beyond the largest finite
// value, infinities included, become +-max; without it they become Inf (E5M2) or NaN (the formats with no
// Inf). NaN stays NaN (sign kept where the format has signed NaNs). The FNUZ formats have no -0: it
// becomes +0. float4 E2M1 has neither Inf nor NaN: it always saturates, and NaN encodes as zero.
#pragma once
#include <cstdint>

#include "kiln/types.h"

namespace kiln {

// True for kFP8, kFP8E5M2, kFP8E4M3FNUZ, kFP8E5M2FNUZ and kFP4 (the formats minifloat_* handle).
bool dtype_is_minifloat(DataType t);

float minifloat_to_float(DataType t, uint8_t code);
uint8_t float_to_minifloat(DataType t, double x, bool saturate = true);

// Largest finite value of a minifloat format (448 for E4M3FN, 57344 for E5M2, 6 for E2M1, ...).
double minifloat_max(DataType t);

// E8M0 (a biased exponent, value 2^(code-127); 0xFF is NaN). Negative inputs are treated by magnitude,
// as ONNX's reference does. Rounding: kUp rounds any fraction up (ONNX's default), kDown truncates,
// kNearest rounds to nearest (ties up); with `saturate` rounding never passes 2^127. NaN and Inf give 0xFF.
enum class E8M0Round : int64_t { kUp = 0, kDown = 1, kNearest = 2 };
float e8m0_to_float(uint8_t code);
uint8_t float_to_e8m0(float x, bool saturate = true, E8M0Round mode = E8M0Round::kUp);

}  // namespace kiln
