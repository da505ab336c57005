// Integer properties of Kiln's dtypes, for kernels and converters that treat many dtypes alike.
//
// Sub-byte integers (int4/uint4/int2/uint2) are stored one per byte (types.h): signed ones sign-extended
// into an int8, unsigned ones zero-extended into a uint8. wrap_to_int() gives the byte a value becomes when
// it is converted with "keep the low bits" semantics (ONNX Cast between integers, numpy's astype).
#pragma once
#include <cstdint>

#include "kiln/types.h"

namespace kiln {

// The integer dtypes (bool excluded).
constexpr bool dtype_is_integer(DataType t) {
  switch (t) {
    case DataType::kINT8:
    case DataType::kUINT8:
    case DataType::kINT16:
    case DataType::kUINT16:
    case DataType::kINT32:
    case DataType::kUINT32:
    case DataType::kINT64:
    case DataType::kUINT64:
    case DataType::kINT4:
    case DataType::kUINT4:
    case DataType::kINT2:
    case DataType::kUINT2: return true;
    default: return false;
  }
}

constexpr bool dtype_is_unsigned(DataType t) {
  return t == DataType::kUINT8 || t == DataType::kUINT16 || t == DataType::kUINT32 || t == DataType::kUINT64 ||
         t == DataType::kUINT4 || t == DataType::kUINT2;
}

// Value bits of an integer dtype (4 for int4, 64 for uint64); 0 for other dtypes.
constexpr int dtype_int_bits(DataType t) {
  switch (t) {
    case DataType::kINT2:
    case DataType::kUINT2: return 2;
    case DataType::kINT4:
    case DataType::kUINT4: return 4;
    case DataType::kINT8:
    case DataType::kUINT8: return 8;
    case DataType::kINT16:
    case DataType::kUINT16: return 16;
    case DataType::kINT32:
    case DataType::kUINT32: return 32;
    case DataType::kINT64:
    case DataType::kUINT64: return 64;
    default: return 0;
  }
}

// Smallest and largest value of an integer dtype of at most 32 bits (quantization ranges).
constexpr int64_t dtype_int_min(DataType t) {
  const int bits = dtype_int_bits(t);
  return dtype_is_unsigned(t) ? 0 : -(int64_t{1} << (bits - 1));
}
constexpr int64_t dtype_int_max(DataType t) {
  const int bits = dtype_int_bits(t);
  return dtype_is_unsigned(t) ? (int64_t{1} << bits) - 1 : (int64_t{1} << (bits - 1)) - 1;
}

// The low `bits` bits of v, sign-extended for signed dtypes (two's complement wrap-around).
constexpr int64_t wrap_to_int(DataType t, int64_t v) {
  const int bits = dtype_int_bits(t);
  if (bits == 0 || bits == 64) return v;
  const uint64_t mask = (uint64_t{1} << bits) - 1, u = static_cast<uint64_t>(v) & mask;
  if (dtype_is_unsigned(t) || !(u >> (bits - 1))) return static_cast<int64_t>(u);
  return static_cast<int64_t>(u | ~mask);
}

}  // namespace kiln
