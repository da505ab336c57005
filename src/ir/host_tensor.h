// An owned-or-borrowed, typed block of host memory with a shape: weights, folded constants,
// shape-tensor values. Copies share the storage (copy-on-write is never needed: constants are immutable
// once built; builders fill a fresh tensor before sharing it).
#pragma once
#include <cstring>
#include <memory>

#include "kiln/types.h"

namespace kiln {

class HostTensor {
 public:
  HostTensor() = default;
  // Allocates zero-filled, 64-byte aligned storage.
  HostTensor(DataType dtype, Dims shape);
  // Borrows `data`, keeping `owner` alive as long as any copy of this tensor lives.
  static HostTensor wrap(DataType dtype, Dims shape, std::shared_ptr<const void> owner, const void* data);
  // Copies `nbytes` from `data`.
  static HostTensor copy_of(DataType dtype, Dims shape, const void* data);
  static HostTensor scalar_i64(int64_t v);
  static HostTensor from_i64(const std::vector<int64_t>& v);
  static HostTensor from_f32(const std::vector<float>& v, Dims shape);

  bool empty() const { return !data_; }
  DataType dtype() const { return dtype_; }
  const Dims& shape() const { return shape_; }
  int64_t numel() const { return volume(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  const void* raw() const { return data_; }
  void* mutable_raw() { return const_cast<void*>(data_); }
  template <class T> const T* data() const { return static_cast<const T*>(data_); }
  template <class T> T* mutable_data() { return static_cast<T*>(mutable_raw()); }

  // Element i converted to int64 / double (any integer, bool or float dtype).
  int64_t get_i64(int64_t i) const;
  double get_f64(int64_t i) const;
  std::vector<int64_t> to_i64() const;   // throws unless an integer dtype
  HostTensor deep_copy() const;
  HostTensor reshaped(Dims shape) const;  // same storage, new shape (numel must match)
  bool same_bytes(const HostTensor& o) const;

 private:
  DataType dtype_ = DataType::kFLOAT;
  Dims shape_;
  std::shared_ptr<const void> owner_;
  const void* data_ = nullptr;
};

// float16 / bfloat16 conversions used by kernels and constant handling.
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);
float bf16_to_float(uint16_t b);
uint16_t float_to_bf16(float f);

}  // namespace kiln
