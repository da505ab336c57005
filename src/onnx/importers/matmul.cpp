// MatMul and Gemm onto MatrixMultiply (+ ElementWise for Gemm's alpha, beta and C).
#include "onnx/import_context.h"

namespace kiln::onnx {
namespace {

using namespace ir_enum;
using Values = std::vector<ir::Value*>;

enum MatOp : int64_t { kNone = 0, kTranspose = 1 };

ir::Value* matmul(ImportContext& ctx, ir::Value* a, int64_t op_a, ir::Value* b, int64_t op_b) {
  ir::Attrs at;
  at.set("op_a", op_a);
  at.set("op_b", op_b);
  return ctx.add1("MatrixMultiply", {a, b}, std::move(at));
}

Values import_matmul(ImportContext& ctx) {
  return {matmul(ctx, ctx.required_input(0), kNone, ctx.required_input(1), kNone)};
}

// Y = alpha * op(A) @ op(B) + beta * C; scale constants only where alpha/beta are not 1.
Values import_gemm(ImportContext& ctx) {
  ir::Value* a = ctx.required_input(0);
  ir::Value* b = ctx.required_input(1);
  ir::Value* c = ctx.input(2);
  if (a->shape.size() != 2 || b->shape.size() != 2)
    ctx.fail(ParserErrorCode::kINVALID_NODE, "Gemm needs 2-D A and B, got " + dims_str(a->shape) + " and " +
                                                 dims_str(b->shape));
  double alpha = ctx.attr_f("alpha", 1.0f), beta = ctx.attr_f("beta", 1.0f);
  ir::Value* y = matmul(ctx, a, ctx.attr_i("transA", 0) ? kTranspose : kNone, b,
                        ctx.attr_i("transB", 0) ? kTranspose : kNone);
  if (alpha != 1.0) y = ctx.elementwise(y, ctx.const_scalar(y->dtype, alpha), kProd);
  if (c && beta != 0.0) {
    if (beta != 1.0) c = ctx.elementwise(c, ctx.const_scalar(c->dtype, beta), kProd);
    y = ctx.elementwise(y, c, kSum);
  }
  return {y};
}

}  // namespace

KILN_REGISTER_IMPORTER("", "MatMul", import_matmul);
KILN_REGISTER_IMPORTER("", "Gemm", import_gemm);

}  // namespace kiln::onnx
