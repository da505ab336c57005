// Swish (opset 24) and SwiGLU, decomposed exactly into existing IR ops:
//   Swish(x)     = x * sigmoid(alpha * x)   (alpha = 1 is the IR Activation SILU)
//   SwiGLU(a, b) = Swish(a) * b             (a and b of one shape; no broadcasting)
#include "onnx/import_context.h"

namespace kiln::onnx {
namespace {

using namespace ir_enum;
using Values = std::vector<ir::Value*>;

constexpr int64_t kSigmoid = 1, kSilu = 65;  // ActivationType values (ir/OPS.md)

ir::Value* swish(ImportContext& ctx, ir::Value* x, float alpha) {
  ir::Attrs at;
  if (alpha == 1.0f) {
    at.set("type", kSilu);
    return ctx.add1("Activation", {x}, std::move(at));
  }
  at.set("type", kSigmoid);
  ir::Value* scaled = ctx.elementwise(x, ctx.const_scalar(x->dtype, alpha), kProd);
  return ctx.elementwise(x, ctx.add1("Activation", {scaled}, std::move(at)), kProd);
}

Values import_swish(ImportContext& ctx) { return {swish(ctx, ctx.required_input(0), ctx.attr_f("alpha", 1.0f))}; }

Values import_swiglu(ImportContext& ctx) {
  ir::Value* a = ctx.required_input(0);
  ir::Value* b = ctx.required_input(1);
  if (a->shape.size() != b->shape.size())
    ctx.fail(ParserErrorCode::kINVALID_NODE, "SwiGLU: A " + dims_str(a->shape) + " and B " + dims_str(b->shape) +
                                                 " must have the same shape");
  for (size_t d = 0; d < a->shape.size(); ++d)
    if (a->shape[d] >= 0 && b->shape[d] >= 0 && a->shape[d] != b->shape[d])
      ctx.fail(ParserErrorCode::kINVALID_NODE, "SwiGLU: A " + dims_str(a->shape) + " and B " + dims_str(b->shape) +
                                                   " must have the same shape");
  return {ctx.elementwise(swish(ctx, a, ctx.attr_f("alpha", 1.0f)), b, kProd)};
}

}  // namespace

KILN_REGISTER_IMPORTER("", "Swish", import_swish);
KILN_REGISTER_IMPORTER("", "SwiGLU", import_swiglu);

}  // namespace kiln::onnx
