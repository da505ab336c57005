// Shape/type inference for BitCast (ONNX opset 26): the same bytes read as another dtype of the same
// width. Semantics in ir/OPS.md.
#include <string>

#include "ir/op_registry.h"

namespace kiln::ir {
namespace {

void infer_bitcast(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  const int64_t raw = ctx.attrs().i("to", -1);
  if (!dtype_is_valid(static_cast<int32_t>(raw))) ctx.fail("unknown target dtype " + std::to_string(raw));
  const DataType to = static_cast<DataType>(raw);
  if (dtype_size(to) != dtype_size(x.dtype))
    ctx.fail(std::string("cannot reinterpret ") + dtype_name(x.dtype) + " as " + dtype_name(to) + ": the widths differ");
  ctx.set_out(0, to, x.shape);
}

}  // namespace

KILN_REGISTER_OP(OpDef{"BitCast", 1, 1, 1, &infer_bitcast});

}  // namespace kiln::ir
