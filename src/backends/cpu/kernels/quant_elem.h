// Element access shared by the CPU quantization kernels (quant.cpp, quant_gemm.cpp): reading scales and
// zero points of any supported dtype, and rounding to a quantized integer range.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "backends/cpu/kernel.h"
#include "ir/dtype_traits.h"
#include "ir/host_tensor.h"
#include "ir/minifloat.h"

namespace kiln::cpu::quant {

// Element i of a float, integer or narrow-float tensor as a double.
inline double load(DataType t, const void* p, int64_t i) {
  switch (t) {
    case DataType::kFLOAT: return static_cast<const float*>(p)[i];
    case DataType::kDOUBLE: return static_cast<const double*>(p)[i];
    case DataType::kHALF: return half_to_float(static_cast<const uint16_t*>(p)[i]);
    case DataType::kBF16: return bf16_to_float(static_cast<const uint16_t*>(p)[i]);
    case DataType::kE8M0: return e8m0_to_float(static_cast<const uint8_t*>(p)[i]);
    case DataType::kINT8:
    case DataType::kINT4:
    case DataType::kINT2: return static_cast<const int8_t*>(p)[i];
    case DataType::kUINT8:
    case DataType::kUINT4:
    case DataType::kUINT2: return static_cast<const uint8_t*>(p)[i];
    case DataType::kINT16: return static_cast<const int16_t*>(p)[i];
    case DataType::kUINT16: return static_cast<const uint16_t*>(p)[i];
    case DataType::kINT32: return static_cast<const int32_t*>(p)[i];
    case DataType::kUINT32: return static_cast<const uint32_t*>(p)[i];
    case DataType::kINT64: return static_cast<double>(static_cast<const int64_t*>(p)[i]);
    default:
      if (dtype_is_minifloat(t)) return minifloat_to_float(t, static_cast<const uint8_t*>(p)[i]);
      throw Error(std::string("quantization kernels cannot read ") + dtype_name(t));
  }
}

// A whole (small) tensor as doubles: scales, zero points.
inline std::vector<double> load_all(const TensorRef& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[i] = load(t.dtype, t.data, i);
  return v;
}

// Stores integer v (already in range) as dtype t's storage (sub-byte types one per byte, sign-extended).
inline void store_int(DataType t, void* p, int64_t i, int64_t v) {
  switch (t) {
    case DataType::kINT8:
    case DataType::kINT4:
    case DataType::kINT2: static_cast<int8_t*>(p)[i] = static_cast<int8_t>(v); break;
    case DataType::kUINT8:
    case DataType::kUINT4:
    case DataType::kUINT2: static_cast<uint8_t*>(p)[i] = static_cast<uint8_t>(v); break;
    case DataType::kINT16: static_cast<int16_t*>(p)[i] = static_cast<int16_t>(v); break;
    case DataType::kUINT16: static_cast<uint16_t*>(p)[i] = static_cast<uint16_t>(v); break;
    default: throw Error(std::string("quantization kernels cannot write ") + dtype_name(t));
  }
}

// round_half_to_even(v) + zero_point, saturated to [lo, hi]. NaN counts as 0 (it has no integer value).
inline int64_t round_saturate(double v, double zero_point, int64_t lo, int64_t hi) {
  double r = std::isnan(v) ? 0.0 : std::nearbyint(v);  // the default rounding mode: to nearest even
  r += zero_point;
  if (r <= static_cast<double>(lo)) return lo;
  if (r >= static_cast<double>(hi)) return hi;
  return static_cast<int64_t>(r);
}

}  // namespace kiln::cpu::quant
