#include "backends/cpu/kernels/gather_addend.h"

#include <algorithm>

#include "backends/cpu/kernels/broadcast.h"
#include "ir/gather_addend.h"
#include "ir/host_tensor.h"

namespace kiln::cpu {

namespace {

float load(DataType dt, const void* p, int64_t i) {
  if (dt == DataType::kFLOAT) return static_cast<const float*>(p)[i];
  const uint16_t v = static_cast<const uint16_t*>(p)[i];
  return dt == DataType::kHALF ? half_to_float(v) : bf16_to_float(v);
}

void store(DataType dt, void* p, int64_t i, float v) {
  if (dt == DataType::kFLOAT) static_cast<float*>(p)[i] = v;
  else static_cast<uint16_t*>(p)[i] = dt == DataType::kHALF ? float_to_half(v) : float_to_bf16(v);
}

}  // namespace

GatherAddend::GatherAddend(const KernelContext& ctx, const TensorRef& data, const Dims& gathered, const TensorRef& y)
    : dtype_(data.dtype), data_(nullptr), gathered_shape_(gathered), by_rows_(false), rows_(1), row_elems_(1) {
  const TensorRef& a = ctx.input(2);
  if (data.shape.empty()) ctx.fail("an addend (input 2) needs rows gathered along axis 0, not from a scalar");
  const int64_t r = static_cast<int64_t>(data.shape.size());
  const int64_t axis = ctx.attrs().i("axis", 0);
  if (axis != 0 && axis != -r)
    ctx.fail("an addend (input 2) needs the gather along axis 0, got axis " + std::to_string(axis));
  if (a.dtype != data.dtype)
    ctx.fail(std::string("the addend (input 2) must have the data's dtype ") + dtype_name(data.dtype) + ", got " +
             dtype_name(a.dtype));
  if (dtype_ != DataType::kFLOAT && dtype_ != DataType::kHALF && dtype_ != DataType::kBF16)
    ctx.fail(std::string("an addend (input 2) needs float32, float16 or bfloat16 data, got ") + dtype_name(dtype_));
  Dims out;
  if (!ir::broadcast_known(gathered, a.shape, &out) || out != y.shape)
    ctx.fail("the addend (input 2) " + dims_str(a.shape) + " and the gathered rows " + dims_str(gathered) +
             " do not broadcast to the output " + dims_str(y.shape));
  data_ = a.data;
  addend_shape_ = a.shape;
  for (size_t d = 1; d < data.shape.size(); ++d) row_elems_ *= data.shape[d];
  by_rows_ = y.shape == gathered && ir::gather_addend_fits(a.shape, y.shape, data.shape.size() - 1);
  // The fit makes the addend a whole number of rows; with empty rows or no rows add_to has nothing to add.
  if (by_rows_) rows_ = row_elems_ > 0 ? std::max<int64_t>(1, a.numel() / row_elems_) : 1;
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

void GatherAddend::add_broadcast(const void* gathered, TensorRef& y, ThreadPool* pool) const {
  const BroadcastPlan plan = make_broadcast_plan(y.shape, {&gathered_shape_, &addend_shape_});
  const int64_t inner = plan.inner, gi = plan.inner_stride[0], ai = plan.inner_stride[1];
  parallel_range(pool, plan.rows, grain_for(inner), [&](int64_t b, int64_t e) {
    int64_t off[BroadcastPlan::kMaxInputs];
    for (int64_t r = b; r < e; ++r) {
      plan.row_offsets(r, off);
      for (int64_t i = 0; i < inner; ++i) {
        const float sum = load(dtype_, gathered, off[0] + i * gi) + load(dtype_, data_, off[1] + i * ai);
        store(dtype_, y.data, r * inner + i, sum);
      }
    }
  });
}

}  // namespace kiln::cpu
