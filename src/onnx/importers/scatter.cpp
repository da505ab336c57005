// ONNX ScatterElements, ScatterND and the deprecated Scatter (opset 9-10, = ScatterElements) -> IR Scatter.
#include "onnx/import_context.h"

namespace kiln::onnx {
namespace {

using Values = std::vector<ir::Value*>;

std::string reduction_of(ImportContext& ctx) {
  std::string red = ctx.attr_s("reduction", "none");
  if (red != "none" && red != "add" && red != "mul" && red != "max" && red != "min")
    ctx.fail(ParserErrorCode::kINVALID_NODE, "unknown reduction '" + red + "' (expected none, add, mul, max or min)");
  return red;
}

Values import_scatter_elements(ImportContext& ctx) {
  ir::Value* data = ctx.required_input(0);
  ir::Attrs at;
  at.set("mode", int64_t{0});
  at.set("axis", ctx.axis(ctx.attr_i("axis", 0), ImportContext::rank(data)));
  at.set("reduction", reduction_of(ctx));
  return {ctx.add1("Scatter", {data, ctx.required_input(1), ctx.required_input(2)}, std::move(at))};
}

Values import_scatter_nd(ImportContext& ctx) {
  ir::Attrs at;
  at.set("mode", int64_t{1});
  at.set("reduction", reduction_of(ctx));
  return {ctx.add1("Scatter", {ctx.required_input(0), ctx.required_input(1), ctx.required_input(2)}, std::move(at))};
}

}  // namespace

KILN_REGISTER_IMPORTER("", "ScatterElements", import_scatter_elements);
KILN_REGISTER_IMPORTER("", "ScatterND", import_scatter_nd);
KILN_REGISTER_IMPORTER("", "Scatter", import_scatter_elements);

}  // namespace kiln::onnx
