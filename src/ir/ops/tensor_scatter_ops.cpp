// Shape/type inference for TensorScatter (ONNX opset 24: a KV-cache update). Semantics in ir/OPS.md.
#include <string>

#include "ir/op_registry.h"

namespace kiln::ir {
namespace {

// past [B, ..., max_seq (at axis), ...], update (past's shape but seq at axis), optional write_indices [B]
// -> past's shape.
void infer_tensor_scatter(InferContext& ctx) {
  const TensorInfo& past = ctx.in(0);
  const TensorInfo& upd = ctx.in(1);
  const int64_t rank = static_cast<int64_t>(past.shape.size());
  if (rank < 2) ctx.fail("the cache must have rank >= 2 (batch first), got " + dims_str(past.shape));
  const int64_t axis = normalize_axis(ctx, ctx.attrs().i("axis", -2), rank);
  if (axis == 0) ctx.fail("axis 0 is the batch axis; the sequence axis must come after it");
  if (upd.dtype != past.dtype)
    ctx.fail(std::string("the update must have the cache's dtype ") + dtype_name(past.dtype) + ", got " + dtype_name(upd.dtype));
  if (upd.shape.size() != past.shape.size())
    ctx.fail("the update " + dims_str(upd.shape) + " must have the cache's rank " + dims_str(past.shape));
  for (int64_t d = 0; d < rank; ++d) {
    const int64_t p = past.shape[d], u = upd.shape[d];
    if (p < 0 || u < 0) continue;
    if (d == axis ? u > p : u != p)
      ctx.fail("the update " + dims_str(upd.shape) + " does not fit the cache " + dims_str(past.shape) + " (axis " +
               std::to_string(axis) + ")");
  }
  if (ctx.has_input(2)) {
    const TensorInfo& wi = ctx.in(2);
    if (wi.dtype != DataType::kINT64 && wi.dtype != DataType::kINT32)
      ctx.fail(std::string("write_indices must be int64, got ") + dtype_name(wi.dtype));
    if (wi.shape.size() != 1 || (wi.shape[0] >= 0 && past.shape[0] >= 0 && wi.shape[0] != past.shape[0]))
      ctx.fail("write_indices must be [batch], got " + dims_str(wi.shape));
  }
  const int64_t mode = ctx.attrs().i("circular", 0);
  if (mode != 0 && mode != 1) ctx.fail("circular must be 0 or 1");
  ctx.set_out(0, past.dtype, past.shape);
}

}  // namespace

KILN_REGISTER_OP(OpDef{"TensorScatter", 2, 3, 1, &infer_tensor_scatter});

}  // namespace kiln::ir
