// Shape/type inference for Scatter (ONNX ScatterElements / ScatterND with reductions).
#include <string>

#include "ir/op_registry.h"

namespace kiln::ir {
namespace {

void infer_scatter(InferContext& ctx) {
  const TensorInfo& data = ctx.in(0);
  const TensorInfo& idx = ctx.in(1);
  const TensorInfo& upd = ctx.in(2);
  if (idx.dtype != DataType::kINT32 && idx.dtype != DataType::kINT64)
    ctx.fail(std::string("indices (input 1) must be int32 or int64, got ") + dtype_name(idx.dtype));
  if (upd.dtype != data.dtype)
    ctx.fail(std::string("updates (input 2) must have the data's dtype ") + dtype_name(data.dtype) + ", got " +
             dtype_name(upd.dtype));
  std::string red = ctx.attrs().s("reduction", "none");
  if (red != "none" && red != "add" && red != "mul" && red != "max" && red != "min")
    ctx.fail("unknown reduction '" + red + "' (expected none, add, mul, max or min)");
  if (red != "none" && data.dtype != DataType::kFLOAT && data.dtype != DataType::kDOUBLE &&
      data.dtype != DataType::kINT32 && data.dtype != DataType::kINT64)
    ctx.fail("reduction '" + red + "' supports float32, double, int32 and int64, got " + dtype_name(data.dtype));
  int64_t r = static_cast<int64_t>(data.shape.size());
  int64_t q = static_cast<int64_t>(idx.shape.size());
  int64_t mode = ctx.attrs().i("mode", 0);
  auto same = [](int64_t a, int64_t b) { return a < 0 || b < 0 || a == b; };
  if (mode == 0) {
    if (r == 0) ctx.fail("cannot scatter into a scalar");
    int64_t axis = normalize_axis(ctx, ctx.attrs().i("axis", 0), r);
    if (q != r)
      ctx.fail("ELEMENT mode needs indices of the data's rank: data " + dims_str(data.shape) + ", indices " +
               dims_str(idx.shape));
    if (upd.shape.size() != idx.shape.size())
      ctx.fail("updates " + dims_str(upd.shape) + " must have the shape of the indices " + dims_str(idx.shape));
    for (int64_t d = 0; d < r; ++d) {
      if (!same(upd.shape[d], idx.shape[d]))
        ctx.fail("updates " + dims_str(upd.shape) + " must have the shape of the indices " + dims_str(idx.shape));
      if (d != axis && data.shape[d] >= 0 && idx.shape[d] > data.shape[d])
        ctx.fail("ELEMENT mode: indices " + dims_str(idx.shape) + " exceed data " + dims_str(data.shape) +
                 " on axis " + std::to_string(d));
    }
  } else if (mode == 1) {
    if (q < 1) ctx.fail("ND mode needs indices of rank >= 1, got " + dims_str(idx.shape));
    int64_t k = idx.shape[q - 1];
    if (k < 0) ctx.fail("ND mode needs the last dim of the indices known, got " + dims_str(idx.shape));
    if (k > r)
      ctx.fail("ND mode: index tuples of length " + std::to_string(k) + " exceed the data rank " + std::to_string(r));
    // updates shape = indices.shape[:-1] + data.shape[k:]
    Dims want(idx.shape.begin(), idx.shape.end() - 1);
    want.insert(want.end(), data.shape.begin() + k, data.shape.end());
    bool ok = want.size() == upd.shape.size();
    for (size_t d = 0; ok && d < want.size(); ++d) ok = same(want[d], upd.shape[d]);
    if (!ok) ctx.fail("ND mode: updates " + dims_str(upd.shape) + " must have shape " + dims_str(want));
  } else {
    ctx.fail("unknown scatter mode " + std::to_string(mode) + " (expected ELEMENT 0 or ND 1)");
  }
  ctx.set_out(0, data.dtype, data.shape);
}

}  // namespace

KILN_REGISTER_OP(OpDef{"Scatter", 3, 3, 1, &infer_scatter});

}  // namespace kiln::ir
