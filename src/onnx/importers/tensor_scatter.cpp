// TensorScatter (opset 24, KV-cache update) onto IR TensorScatter.
#include "onnx/import_context.h"

namespace kiln::onnx {
namespace {

using Values = std::vector<ir::Value*>;

Values import_tensor_scatter(ImportContext& ctx) {
  ir::Value* past = ctx.required_input(0);
  const std::string mode = ctx.attr_s("mode", "linear");
  if (mode != "linear" && mode != "circular")
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR, "TensorScatter: unknown mode '" + mode + "' (expected linear or circular)");
  ir::Attrs at;
  at.set("axis", ctx.axis(ctx.attr_i("axis", -2), ImportContext::rank(past)));
  at.set("circular", mode == "circular");
  std::vector<ir::Value*> ins = {past, ctx.required_input(1)};
  if (ctx.has_input(2)) ins.push_back(ctx.input(2));
  return {ctx.add1("TensorScatter", std::move(ins), std::move(at))};
}

}  // namespace

KILN_REGISTER_IMPORTER("", "TensorScatter", import_tensor_scatter);

}  // namespace kiln::onnx
