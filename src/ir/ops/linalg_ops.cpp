// Shape/type inference for the linear-algebra op Det (determinants of the trailing square matrices).
// Semantics in ir/OPS.md.
#include <string>

#include "ir/op_registry.h"

namespace kiln::ir {
namespace {

// Det: x [..., M, M] -> [...].
void infer_det(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  if (x.dtype != DataType::kFLOAT && x.dtype != DataType::kDOUBLE)
    ctx.fail(std::string("the input must be float32 or float64, got ") + dtype_name(x.dtype));
  const size_t r = x.shape.size();
  if (r < 2) ctx.fail("the input must be [..., M, M], got " + dims_str(x.shape));
  const int64_t a = x.shape[r - 2], b = x.shape[r - 1];
  if (a >= 0 && b >= 0 && a != b) ctx.fail("the matrices must be square, got " + dims_str(x.shape));
  ctx.set_out(0, x.dtype, Dims(x.shape.begin(), x.shape.end() - 2));
}

}  // namespace

KILN_REGISTER_OP(OpDef{"Det", 1, 1, 1, &infer_det});

}  // namespace kiln::ir
