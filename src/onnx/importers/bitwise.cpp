// BitwiseAnd / BitwiseOr / BitwiseXor / BitwiseNot (opset 18) onto IR Bitwise; BitCast (opset 26) onto IR
// BitCast (both act on the raw bits).
#include "onnx/import_context.h"

namespace kiln::onnx {
namespace {

using Values = std::vector<ir::Value*>;

template <int64_t Op>
Values import_bitwise(ImportContext& ctx) {
  ir::Attrs at;
  at.set("op", Op);
  std::vector<ir::Value*> ins = {ctx.required_input(0)};
  if (Op != 3) ins.push_back(ctx.required_input(1));
  return {ctx.add1("Bitwise", std::move(ins), std::move(at))};
}

Values import_bitcast(ImportContext& ctx) {
  const int64_t raw = ctx.req_attr_i("to");
  std::optional<kiln::DataType> to = to_kiln_dtype(static_cast<int32_t>(raw));
  if (!to) ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DATATYPE, "BitCast: target type " + std::to_string(raw) + " is not supported");
  ir::Attrs at;
  at.set("to", static_cast<int64_t>(*to));
  return {ctx.add1("BitCast", {ctx.required_input(0)}, std::move(at))};
}

}  // namespace

KILN_REGISTER_IMPORTER("", "BitCast", import_bitcast);
KILN_REGISTER_IMPORTER("", "BitwiseAnd", import_bitwise<0>);
KILN_REGISTER_IMPORTER("", "BitwiseOr", import_bitwise<1>);
KILN_REGISTER_IMPORTER("", "BitwiseXor", import_bitwise<2>);
KILN_REGISTER_IMPORTER("", "BitwiseNot", import_bitwise<3>);

}  // namespace kiln::onnx
