// Shape/type inference for the ops whose output sizes depend on input values: NonZero, Compress, Unique,
// NonMaxSuppression. The data-dependent dims are -1 here; the CPU kernels set them while running. Contract:
// ir/OPS.md.
#include <algorithm>
#include <set>

#include "ir/op_registry.h"
#include "ir/ops/data_dependent_ops.h"

namespace kiln::ir {

bool has_data_dependent_shape(const std::string& op) {
  static const std::set<std::string> ops = {"NonZero", "Compress", "Unique", "NonMaxSuppression"};
  return ops.count(op) != 0;
}

namespace {

bool plain_dtype(DataType t) {
  switch (t) {
    case DataType::kFLOAT: case DataType::kHALF: case DataType::kBF16: case DataType::kDOUBLE:
    case DataType::kINT8: case DataType::kUINT8: case DataType::kINT32: case DataType::kINT64: case DataType::kBOOL:
      return true;
    default: return false;
  }
}

void check_plain(const InferContext& ctx, size_t i) {
  if (!plain_dtype(ctx.in(i).dtype))
    ctx.fail("input " + std::to_string(i) + " has dtype " + dtype_name(ctx.in(i).dtype) + ", which it does not support");
}

// NonZero: x -> int64 [rank, count] (a scalar counts as a 1-element vector, as in ONNX Runtime).
void infer_nonzero(InferContext& ctx) {
  check_plain(ctx, 0);
  int64_t r = static_cast<int64_t>(ctx.in(0).shape.size());
  ctx.set_out(0, DataType::kINT64, {std::max<int64_t>(r, 1), -1});
}

// Compress: x, condition (bool 1-D); attr `axis` when `has_axis` (else x is flattened).
void infer_compress(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  const TensorInfo& c = ctx.in(1);
  check_plain(ctx, 0);
  if (c.dtype != DataType::kBOOL) ctx.fail(std::string("the condition (input 1) must be bool, got ") + dtype_name(c.dtype));
  if (c.shape.size() != 1) ctx.fail("the condition (input 1) must be 1-D, got shape " + dims_str(c.shape));
  if (ctx.attrs().i("has_axis", 0) == 0) {
    ctx.set_out(0, x.dtype, {-1});
    return;
  }
  int64_t r = static_cast<int64_t>(x.shape.size());
  int64_t axis = normalize_axis(ctx, ctx.attrs().i("axis", 0), r);
  if (c.shape[0] >= 0 && x.shape[axis] >= 0 && c.shape[0] > x.shape[axis])
    ctx.fail("the condition has " + std::to_string(c.shape[0]) + " entries, axis " + std::to_string(axis) +
             " of " + dims_str(x.shape) + " only " + std::to_string(x.shape[axis]));
  Dims out = x.shape;
  out[axis] = -1;
  ctx.set_out(0, x.dtype, out);
}

// Unique: x; attrs `sorted`, `axis` when `has_axis`. Outputs: unique values/slices, first-occurrence indices,
// inverse indices (one per input element or slice: a known size), counts.
void infer_unique(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  check_plain(ctx, 0);
  if (ctx.outputs().empty() || ctx.outputs().size() > 4)
    ctx.fail("has 1 to 4 outputs (values, indices, inverse indices, counts), got " + std::to_string(ctx.outputs().size()));
  Dims y{-1};
  int64_t n_in = volume(x.shape);
  if (ctx.attrs().i("has_axis", 0) != 0) {
    int64_t r = static_cast<int64_t>(x.shape.size());
    if (r == 0) ctx.fail("an axis needs an input of rank >= 1");
    int64_t axis = normalize_axis(ctx, ctx.attrs().i("axis", 0), r);
    y = x.shape;
    y[axis] = -1;
    n_in = x.shape[axis];
  }
  ctx.set_out(0, x.dtype, y);
  for (size_t i = 1; i < ctx.outputs().size(); ++i) ctx.set_out(i, DataType::kINT64, {i == 2 ? n_in : -1});
}

// NonMaxSuppression: boxes [B, N, 4], scores [B, C, N], optional max_output_boxes_per_class (int64, 1
// value), iou_threshold, score_threshold (float, 1 value); attr `center_point_box`. Output int64 [-1, 3].
void infer_nms(InferContext& ctx) {
  const TensorInfo& boxes = ctx.in(0);
  const TensorInfo& scores = ctx.in(1);
  for (size_t i : {0, 1})
    if (ctx.in(i).dtype != DataType::kFLOAT)
      ctx.fail("input " + std::to_string(i) + " must be float32, got " + dtype_name(ctx.in(i).dtype));
  if (boxes.shape.size() != 3 || (boxes.shape[2] >= 0 && boxes.shape[2] != 4))
    ctx.fail("boxes (input 0) must be [batches, boxes, 4], got " + dims_str(boxes.shape));
  if (scores.shape.size() != 3) ctx.fail("scores (input 1) must be [batches, classes, boxes], got " + dims_str(scores.shape));
  for (int d : {0, 1}) {
    int64_t b = boxes.shape[d], s = scores.shape[d == 0 ? 0 : 2];
    if (b >= 0 && s >= 0 && b != s)
      ctx.fail("boxes " + dims_str(boxes.shape) + " and scores " + dims_str(scores.shape) + " disagree on the " +
               (d == 0 ? "batch size" : "box count"));
  }
  if (ctx.has_input(2) && ctx.in(2).dtype != DataType::kINT64 && ctx.in(2).dtype != DataType::kINT32)
    ctx.fail(std::string("max_output_boxes_per_class (input 2) must be int64, got ") + dtype_name(ctx.in(2).dtype));
  for (size_t i : {2, 3, 4}) {
    if (!ctx.has_input(i)) continue;
    int64_t n = volume(ctx.in(i).shape);
    if (n != 1 && n != -1) ctx.fail("input " + std::to_string(i) + " must hold one value, got shape " + dims_str(ctx.in(i).shape));
    if (i > 2 && !dtype_is_float(ctx.in(i).dtype))
      ctx.fail("input " + std::to_string(i) + " must be a float threshold, got " + dtype_name(ctx.in(i).dtype));
  }
  int64_t cpb = ctx.attrs().i("center_point_box", 0);
  if (cpb != 0 && cpb != 1) ctx.fail("center_point_box must be 0 or 1, got " + std::to_string(cpb));
  ctx.set_out(0, DataType::kINT64, {-1, 3});
}

}  // namespace

KILN_REGISTER_OP(OpDef{"NonZero", 1, 1, 1, &infer_nonzero});
KILN_REGISTER_OP(OpDef{"Compress", 2, 2, 1, &infer_compress});
KILN_REGISTER_OP(OpDef{"Unique", 1, 1, -1, &infer_unique});
KILN_REGISTER_OP(OpDef{"NonMaxSuppression", 2, 5, 1, &infer_nms});

}  // namespace kiln::ir
