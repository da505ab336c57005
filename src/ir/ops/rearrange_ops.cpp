// Shape/type inference for the element-rearranging ops: OneHot, ReverseSequence and CenterCropPad.
// Semantics in ir/OPS.md. Sizes given by input values (OneHot's depth, CenterCropPad's shape) give -1
// dims when the value is not known here.
#include <optional>
#include <string>

#include "ir/op_registry.h"

namespace kiln::ir {
namespace {

bool is_int(DataType t) { return t == DataType::kINT32 || t == DataType::kINT64; }
bool is_number(DataType t) {
  return is_int(t) || t == DataType::kFLOAT || t == DataType::kDOUBLE || t == DataType::kINT8 || t == DataType::kUINT8;
}

// OneHot: indices (any number type; negatives count from depth), depth (scalar), values [off, on] ->
// indices' shape with a dim of size depth inserted at `axis` (of the output), dtype of values.
void infer_one_hot(InferContext& ctx) {
  const TensorInfo& idx = ctx.in(0);
  const TensorInfo& depth = ctx.in(1);
  const TensorInfo& values = ctx.in(2);
  if (!is_number(idx.dtype)) ctx.fail(std::string("indices (input 0) must be numeric, got ") + dtype_name(idx.dtype));
  if (!is_number(depth.dtype)) ctx.fail(std::string("depth (input 1) must be numeric, got ") + dtype_name(depth.dtype));
  if (volume(depth.shape) != 1 && volume(depth.shape) != -1)
    ctx.fail("depth (input 1) must be a scalar, got shape " + dims_str(depth.shape));
  if (values.shape.size() != 1 || (values.shape[0] != 2 && values.shape[0] != -1))
    ctx.fail("values (input 2) must be [off, on] (2 elements), got shape " + dims_str(values.shape));
  const int64_t rank = static_cast<int64_t>(idx.shape.size()) + 1;
  const int64_t axis = normalize_axis(ctx, ctx.attrs().i("axis", -1), rank);
  int64_t d = -1;
  if (depth.value) {
    double v = depth.value->get_f64(0);
    if (v < 1) ctx.fail("depth must be >= 1, got " + std::to_string(v));
    d = static_cast<int64_t>(v);
  }
  Dims out = idx.shape;
  out.insert(out.begin() + axis, d);
  ctx.set_out(0, values.dtype, out);
}

// ReverseSequence: x with a time and a batch axis (0/1 in either order), sequence_lens [batch] ->
// x's shape; the first sequence_lens[b] steps of each batch entry reversed.
void infer_reverse_sequence(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  const TensorInfo& lens = ctx.in(1);
  if (x.shape.size() < 2) ctx.fail("the input must have rank >= 2, got " + dims_str(x.shape));
  const int64_t t = ctx.attrs().i("time_axis", 0), b = ctx.attrs().i("batch_axis", 1);
  if (!((t == 0 && b == 1) || (t == 1 && b == 0)))
    ctx.fail("time_axis/batch_axis must be 0/1 or 1/0, got " + std::to_string(t) + "/" + std::to_string(b));
  if (!is_int(lens.dtype)) ctx.fail(std::string("sequence_lens (input 1) must be int64, got ") + dtype_name(lens.dtype));
  const int64_t batch = x.shape[static_cast<size_t>(b)];
  if (lens.shape.size() != 1 || (batch >= 0 && lens.shape[0] >= 0 && lens.shape[0] != batch))
    ctx.fail("sequence_lens must be [batch] = [" + std::to_string(batch) + "], got " + dims_str(lens.shape));
  ctx.set_out(0, x.dtype, x.shape);
}

// CenterCropPad: x, shape (int [len(axes)]) -> x with each listed axis center-cropped or zero-padded to
// the given size.
void infer_center_crop_pad(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  const TensorInfo& shape = ctx.in(1);
  if (!is_int(shape.dtype)) ctx.fail(std::string("shape (input 1) must be int64, got ") + dtype_name(shape.dtype));
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  std::vector<int64_t> axes = ctx.attrs().ints("axes");
  if (axes.empty())
    for (int64_t d = 0; d < rank; ++d) axes.push_back(d);
  if (shape.shape.size() != 1 || (shape.shape[0] >= 0 && shape.shape[0] != static_cast<int64_t>(axes.size())))
    ctx.fail("shape must hold one size per axis (" + std::to_string(axes.size()) + "), got shape " + dims_str(shape.shape));
  Dims out = x.shape;
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (size_t i = 0; i < axes.size(); ++i) {
    const int64_t a = normalize_axis(ctx, axes[i], rank);
    if (seen[a]) ctx.fail("axis " + std::to_string(axes[i]) + " is listed twice");
    seen[a] = true;
    out[a] = -1;
    if (shape.value) {
      const int64_t v = shape.value->get_i64(static_cast<int64_t>(i));
      if (v < 0) ctx.fail("shape " + dims_str(shape.value->to_i64()) + " has a negative size");
      out[a] = v;
    }
  }
  ctx.set_out(0, x.dtype, out);
}

}  // namespace

KILN_REGISTER_OP(OpDef{"OneHot", 3, 3, 1, &infer_one_hot});
KILN_REGISTER_OP(OpDef{"ReverseSequence", 2, 2, 1, &infer_reverse_sequence});
KILN_REGISTER_OP(OpDef{"CenterCropPad", 2, 2, 1, &infer_center_crop_pad});

}  // namespace kiln::ir
