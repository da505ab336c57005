// OneHot, ReverseSequence and CenterCropPad onto the IR ops of the same name. OneHot's depth and
// CenterCropPad's shape stay inputs: output sizes follow their values when known at build time.
#include "onnx/import_context.h"

namespace kiln::onnx {
namespace {

using Values = std::vector<ir::Value*>;

Values import_one_hot(ImportContext& ctx) {
  ir::Value* idx = ctx.required_input(0);
  ir::Attrs at;
  at.set("axis", ctx.axis(ctx.attr_i("axis", -1), ImportContext::rank(idx) + 1));
  return {ctx.add1("OneHot", {idx, ctx.required_input(1), ctx.required_input(2)}, std::move(at))};
}

Values import_reverse_sequence(ImportContext& ctx) {
  ir::Attrs at;
  at.set("time_axis", ctx.attr_i("time_axis", 0));
  at.set("batch_axis", ctx.attr_i("batch_axis", 1));
  return {ctx.add1("ReverseSequence", {ctx.required_input(0), ctx.required_input(1)}, std::move(at))};
}

Values import_center_crop_pad(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  std::vector<int64_t> axes;
  if (ctx.has_attr("axes"))
    for (int64_t a : ctx.attr_ints("axes")) axes.push_back(ctx.axis(a, ImportContext::rank(x), "axes"));
  ir::Attrs at;
  if (!axes.empty()) at.set("axes", axes);
  return {ctx.add1("CenterCropPad", {x, ctx.required_input(1)}, std::move(at))};
}

}  // namespace

KILN_REGISTER_IMPORTER("", "OneHot", import_one_hot);
KILN_REGISTER_IMPORTER("", "ReverseSequence", import_reverse_sequence);
KILN_REGISTER_IMPORTER("", "CenterCropPad", import_center_crop_pad);

}  // namespace kiln::onnx
