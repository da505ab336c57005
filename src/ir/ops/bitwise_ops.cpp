// Shape/type inference for Bitwise (ONNX BitwiseAnd / BitwiseOr / BitwiseXor / BitwiseNot). Semantics in
// ir/OPS.md.
#include <string>

#include "ir/op_registry.h"

namespace kiln::ir {
namespace {

// Integer dtypes of whole bytes: the ops work on the raw bits, so signedness does not matter.
bool bitwise_dtype(DataType t) {
  if (dtype_is_float(t) || t == DataType::kBOOL) return false;
  const size_t s = dtype_size(t);
  if (s == 1) return t == DataType::kINT8 || t == DataType::kUINT8;  // not the sub-byte types
  return s == 2 || s == 4 || s == 8;
}

// a, optional b -> `op` AND 0, OR 1, XOR 2 (numpy broadcast of a and b) or NOT 3 (a only).
void infer_bitwise(InferContext& ctx) {
  const TensorInfo& a = ctx.in(0);
  const int64_t op = ctx.attrs().i("op", 0);
  if (op < 0 || op > 3) ctx.fail("unknown op " + std::to_string(op) + " (expected AND 0, OR 1, XOR 2, NOT 3)");
  if (!bitwise_dtype(a.dtype)) ctx.fail(std::string("needs an integer input, got ") + dtype_name(a.dtype));
  if (op == 3) {
    if (ctx.has_input(1)) ctx.fail("NOT takes one input");
    ctx.set_out(0, a.dtype, a.shape);
    return;
  }
  if (!ctx.has_input(1)) ctx.fail("AND/OR/XOR take two inputs");
  const TensorInfo& b = ctx.in(1);
  if (b.dtype != a.dtype)
    ctx.fail(std::string("inputs differ in dtype: ") + dtype_name(a.dtype) + " and " + dtype_name(b.dtype));
  ctx.set_out(0, a.dtype, broadcast_shapes(ctx, a.shape, b.shape));
}

}  // namespace

KILN_REGISTER_OP(OpDef{"Bitwise", 1, 2, 1, &infer_bitwise});

}  // namespace kiln::ir
