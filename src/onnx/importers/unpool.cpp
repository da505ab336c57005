// MaxUnpool and Col2Im onto the IR ops of the same name; Det onto IR Det.
#include "onnx/import_context.h"

namespace kiln::onnx {
namespace {

using Values = std::vector<ir::Value*>;

Values import_max_unpool(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  ir::Attrs at;
  at.set("kernel", ctx.req_attr_ints("kernel_shape"));
  if (ctx.has_attr("strides")) at.set("stride", ctx.attr_ints("strides"));
  if (ctx.has_attr("pads")) at.set("pads", ctx.attr_ints("pads"));
  std::vector<ir::Value*> ins = {x, ctx.required_input(1)};
  if (ctx.has_input(2)) ins.push_back(ctx.input(2));
  return {ctx.add1("MaxUnpool", std::move(ins), std::move(at))};
}

Values import_col2im(ImportContext& ctx) {
  ir::Attrs at;
  for (const char* name : {"dilations", "pads", "strides"})
    if (ctx.has_attr(name)) at.set(name, ctx.attr_ints(name));
  return {ctx.add1("Col2Im", {ctx.required_input(0), ctx.required_input(1), ctx.required_input(2)}, std::move(at))};
}

Values import_det(ImportContext& ctx) { return {ctx.add1("Det", {ctx.required_input(0)})}; }

}  // namespace

KILN_REGISTER_IMPORTER("", "MaxUnpool", import_max_unpool);
KILN_REGISTER_IMPORTER("", "Col2Im", import_col2im);
KILN_REGISTER_IMPORTER("", "Det", import_det);

}  // namespace kiln::onnx
