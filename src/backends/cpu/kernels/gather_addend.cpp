#include "backends/cpu/kernels/gather_addend.h"

#include <algorithm>

#include "ir/gather_addend.h"
#include "ir/host_tensor.h"

namespace kiln::cpu {

GatherAddend::GatherAddend(const KernelContext& ctx, const TensorRef& data, const TensorRef& y)
    : dtype_(data.dtype), data_(nullptr), rows_(1), row_elems_(1) {
  const TensorRef& a = ctx.input(2);
  if (ctx.attrs().i("mode", 0) != 0 || data.shape.empty())
    ctx.fail("an addend (input 2) needs rows gathered along axis 0 in DEFAULT mode");
  const int64_t r = static_cast<int64_t>(data.shape.size());
  const int64_t axis = ctx.attrs().i("axis", 0);
  if (axis != 0 && axis != -r)
    ctx.fail("an addend (input 2) needs the gather along axis 0, got axis " + std::to_string(axis));
  if (a.dtype != data.dtype)
    ctx.fail(std::string("the addend (input 2) must have the data's dtype ") + dtype_name(data.dtype) + ", got " +
             dtype_name(a.dtype));
  if (dtype_ != DataType::kFLOAT && dtype_ != DataType::kHALF && dtype_ != DataType::kBF16)
    ctx.fail(std::string("an addend (input 2) needs float32, float16 or bfloat16 data, got ") + dtype_name(dtype_));
  if (!ir::gather_addend_fits(a.shape, y.shape, data.shape.size() - 1))
    ctx.fail("the addend (input 2) " + dims_str(a.shape) + " does not fit the output " + dims_str(y.shape));
  data_ = a.data;
  for (size_t d = 1; d < data.shape.size(); ++d) row_elems_ *= data.shape[d];
  // The fit makes the addend a whole number of rows; with empty rows or no rows add_to has nothing to add.
  rows_ = row_elems_ > 0 ? std::max<int64_t>(1, a.numel() / row_elems_) : 1;
}

void GatherAddend::add_to(void* row, int64_t u) const {
  const int64_t at = (u % rows_) * row_elems_;
  const int64_t n = row_elems_;
  if (dtype_ == DataType::kFLOAT) {
    float* y = static_cast<float*>(row);
    const float* a = static_cast<const float*>(data_) + at;
    for (int64_t i = 0; i < n; ++i) y[i] += a[i];
    return;
  }
  uint16_t* y = static_cast<uint16_t*>(row);
  const uint16_t* a = static_cast<const uint16_t*>(data_) + at;
  if (dtype_ == DataType::kHALF) {
    for (int64_t i = 0; i < n; ++i) y[i] = float_to_half(half_to_float(y[i]) + half_to_float(a[i]));
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = float_to_bf16(bf16_to_float(y[i]) + bf16_to_float(a[i]));
  }
}

}  // namespace kiln::cpu
