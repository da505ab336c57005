#include "ir/host_tensor.h"

#include <cmath>
#include <cstdlib>

#include "ir/dtype_traits.h"
#include "ir/minifloat.h"

namespace kiln {

namespace {
struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};
}  // namespace

HostTensor::HostTensor(DataType dtype, Dims shape) : dtype_(dtype), shape_(std::move(shape)) {
  int64_t n = volume(shape_);
  if (n < 0) throw Error("HostTensor: cannot allocate a tensor of unknown shape " + dims_str(shape_));
  size_t bytes = static_cast<size_t>(n) * dtype_size(dtype);
  size_t rounded = ((bytes + 63) / 64) * 64;
  if (rounded == 0) rounded = 64;  // keep data_ non-null for empty tensors
  void* p = std::aligned_alloc(64, rounded);
  if (!p) throw Error("HostTensor: out of host memory allocating " + std::to_string(bytes) + " bytes");
  std::memset(p, 0, rounded);
  owner_ = std::shared_ptr<void>(p, AlignedFree());
  data_ = p;
}

HostTensor HostTensor::wrap(DataType dtype, Dims shape, std::shared_ptr<const void> owner, const void* data) {
  HostTensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.owner_ = std::move(owner);
  t.data_ = data;
  return t;
}

HostTensor HostTensor::copy_of(DataType dtype, Dims shape, const void* data) {
  HostTensor t(dtype, std::move(shape));
  if (t.nbytes()) std::memcpy(t.mutable_raw(), data, t.nbytes());
  return t;
}

HostTensor HostTensor::scalar_i64(int64_t v) { return copy_of(DataType::kINT64, {}, &v); }

HostTensor HostTensor::from_i64(const std::vector<int64_t>& v) {
  return copy_of(DataType::kINT64, {static_cast<int64_t>(v.size())}, v.data());
}

HostTensor HostTensor::from_f32(const std::vector<float>& v, Dims shape) {
  if (volume(shape) != static_cast<int64_t>(v.size())) throw Error("HostTensor::from_f32: size mismatch");
  return copy_of(DataType::kFLOAT, std::move(shape), v.data());
}

int64_t HostTensor::get_i64(int64_t i) const {
  switch (dtype_) {
    case DataType::kINT64: return data<int64_t>()[i];
    case DataType::kINT32: return data<int32_t>()[i];
    case DataType::kINT8: return data<int8_t>()[i];
    case DataType::kUINT8: return data<uint8_t>()[i];
    case DataType::kBOOL: return data<uint8_t>()[i] != 0;
    case DataType::kINT16: return data<int16_t>()[i];
    case DataType::kUINT16: return data<uint16_t>()[i];
    case DataType::kUINT32: return data<uint32_t>()[i];
    case DataType::kUINT64: return static_cast<int64_t>(data<uint64_t>()[i]);  // wraps above INT64_MAX
    case DataType::kINT4:
    case DataType::kINT2: return data<int8_t>()[i];   // stored sign-extended
    case DataType::kUINT4:
    case DataType::kUINT2: return data<uint8_t>()[i];
    default: return static_cast<int64_t>(get_f64(i));
  }
}

double HostTensor::get_f64(int64_t i) const {
  switch (dtype_) {
    case DataType::kFLOAT: return data<float>()[i];
    case DataType::kDOUBLE: return data<double>()[i];
    case DataType::kHALF: return half_to_float(data<uint16_t>()[i]);
    case DataType::kBF16: return bf16_to_float(data<uint16_t>()[i]);
    case DataType::kUINT64: return static_cast<double>(data<uint64_t>()[i]);
    case DataType::kE8M0: return e8m0_to_float(data<uint8_t>()[i]);
    case DataType::kFP8:
    case DataType::kFP8E5M2:
    case DataType::kFP8E4M3FNUZ:
    case DataType::kFP8E5M2FNUZ:
    case DataType::kFP4: return minifloat_to_float(dtype_, data<uint8_t>()[i]);
    default: return static_cast<double>(get_i64(i));
  }
}

std::vector<int64_t> HostTensor::to_i64() const {
  if (!dtype_is_integer(dtype_) && dtype_ != DataType::kBOOL)
    throw Error(std::string("expected an integer tensor, got ") + dtype_name(dtype_));
  std::vector<int64_t> v(numel());
  for (int64_t i = 0; i < numel(); ++i) v[i] = get_i64(i);
  return v;
}

HostTensor HostTensor::deep_copy() const { return copy_of(dtype_, shape_, data_); }

HostTensor HostTensor::reshaped(Dims shape) const {
  if (volume(shape) != numel()) throw Error("HostTensor::reshaped: " + dims_str(shape_) + " -> " + dims_str(shape));
  HostTensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

bool HostTensor::same_bytes(const HostTensor& o) const {
  return dtype_ == o.dtype_ && shape_ == o.shape_ && (nbytes() == 0 || std::memcmp(data_, o.data_, nbytes()) == 0);
}

float half_to_float(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalize
      int e = -1;
      do { ++e; mant <<= 1; } while ((mant & 0x400) == 0);
      bits = sign | ((127 - 15 - e) << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000, mant = x & 0x7fffff;
  int32_t exp = static_cast<int32_t>((x >> 23) & 0xff);
  if (exp == 255) return static_cast<uint16_t>(sign | 0x7c00 | (mant ? 0x200 : 0));
  int32_t e = exp - 127 + 15;
  if (e >= 31) return static_cast<uint16_t>(sign | 0x7c00);
  if (e <= 0) {
    if (e < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000;
    uint32_t shift = static_cast<uint32_t>(14 - e);
    uint32_t half_mant = mant >> shift, rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half_mant & 1))) ++half_mant;
    return static_cast<uint16_t>(sign | half_mant);
  }
  uint32_t half = sign | (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) ++half;  // round to nearest even (may carry into exp)
  return static_cast<uint16_t>(half);
}

float bf16_to_float(uint16_t b) {
  uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if (std::isnan(f)) return static_cast<uint16_t>((x >> 16) | 0x40);
  x += 0x7fff + ((x >> 16) & 1);
  return static_cast<uint16_t>(x >> 16);
}

}  // namespace kiln
