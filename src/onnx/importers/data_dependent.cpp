// ONNX ops whose output sizes depend on input values: NonZero, Compress, Unique, NonMaxSuppression. They map
// one to one onto IR ops of the same names (ir/OPS.md); engines that hold them run in the executor's dynamic
// mode, and outputs of data-dependent shape come back through an output allocator.
#include "onnx/import_context.h"

namespace kiln::onnx {
namespace {

using Values = std::vector<ir::Value*>;

Values import_nonzero(ImportContext& ctx) { return {ctx.add1("NonZero", {ctx.required_input(0)})}; }

Values import_compress(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  ir::Attrs at;
  if (ctx.has_attr("axis")) {
    at.set("has_axis", int64_t{1});
    at.set("axis", ctx.axis(ctx.attr_i("axis", 0), ImportContext::rank(x)));
  }
  ir::Value* cond = ctx.required_input(1);
  if (cond->dtype != kiln::DataType::kBOOL) cond = ctx.cast(cond, kiln::DataType::kBOOL);
  return {ctx.add1("Compress", {x, cond}, std::move(at))};
}

Values import_unique(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  ir::Attrs at;
  at.set("sorted", ctx.attr_i("sorted", 1));
  if (ctx.has_attr("axis")) {
    at.set("has_axis", int64_t{1});
    at.set("axis", ctx.axis(ctx.attr_i("axis", 0), ImportContext::rank(x)));
  }
  int outputs = 1;  // Y always; the optional ones up to the last that is named
  for (size_t i = 1; i < ctx.num_outputs() && i < 4; ++i)
    if (ctx.output_named(i)) outputs = static_cast<int>(i) + 1;
  return ctx.add("Unique", {x}, std::move(at), outputs)->outputs;
}

Values import_nms(ImportContext& ctx) {
  ir::Attrs at;
  at.set("center_point_box", ctx.attr_i("center_point_box", 0));
  Values ins{ctx.required_input(0), ctx.required_input(1)};
  for (size_t i = 2; i < 5; ++i) ins.push_back(ctx.input(i));
  return {ctx.add1("NonMaxSuppression", ins, std::move(at))};
}

}  // namespace

KILN_REGISTER_IMPORTER("", "NonZero", import_nonzero);
KILN_REGISTER_IMPORTER("", "Compress", import_compress);
KILN_REGISTER_IMPORTER("", "Unique", import_unique);
KILN_REGISTER_IMPORTER("", "NonMaxSuppression", import_nms);

}  // namespace kiln::onnx
