// Spatial sampling ops: GridSample (opset 16 names bilinear/bicubic, opset 20 linear/cubic and N-D),
// AffineGrid, RoiAlign (opset 10: no coordinate_transformation_mode, i.e. output_half_pixel; opset 16:
// half_pixel by default) and MaxRoiPool, each onto the IR op of the same name.
#include "onnx/import_context.h"

namespace kiln::onnx {
namespace {

using Values = std::vector<ir::Value*>;

Values import_grid_sample(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  ir::Value* grid = ctx.required_input(1);
  const std::string mode = ctx.attr_s("mode", ctx.opset() >= 20 ? "linear" : "bilinear");
  const std::string pad = ctx.attr_s("padding_mode", "zeros");
  ir::Attrs at;
  if (mode == "nearest") at.set("mode", int64_t{0});
  else if (mode == "linear" || mode == "bilinear") at.set("mode", int64_t{1});
  else if (mode == "cubic" || mode == "bicubic") at.set("mode", int64_t{2});
  else
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR,
             "GridSample: unknown mode '" + mode + "' (expected nearest, linear/bilinear or cubic/bicubic)");
  if (pad == "zeros") at.set("padding_mode", int64_t{0});
  else if (pad == "border") at.set("padding_mode", int64_t{1});
  else if (pad == "reflection") at.set("padding_mode", int64_t{2});
  else
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR,
             "GridSample: unknown padding_mode '" + pad + "' (expected zeros, border or reflection)");
  at.set("align_corners", ctx.attr_i("align_corners", 0) != 0);
  if (ctx.opset() < 20 && ImportContext::rank(x) != 4)
    ctx.fail(ParserErrorCode::kINVALID_NODE, "GridSample (opset " + std::to_string(ctx.opset()) +
                                                 ") takes a 4-D input, got " + dims_str(x->shape) +
                                                 "; N-D sampling needs opset 20");
  return {ctx.add1("GridSample", {x, grid}, std::move(at))};
}

Values import_affine_grid(ImportContext& ctx) {
  ir::Attrs at;
  at.set("align_corners", ctx.attr_i("align_corners", 0) != 0);
  return {ctx.add1("AffineGrid", {ctx.required_input(0), ctx.required_input(1)}, std::move(at))};
}

Values import_roi_align(ImportContext& ctx) {
  const std::string mode = ctx.attr_s("mode", "avg");
  if (mode != "avg" && mode != "max")
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR, "RoiAlign: unknown mode '" + mode + "' (expected avg or max)");
  const std::string ctm =
      ctx.attr_s("coordinate_transformation_mode", ctx.opset() >= 16 ? "half_pixel" : "output_half_pixel");
  if (ctm != "half_pixel" && ctm != "output_half_pixel")
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR, "RoiAlign: unknown coordinate_transformation_mode '" + ctm +
                                                          "' (expected half_pixel or output_half_pixel)");
  ir::Attrs at;
  at.set("mode", int64_t{mode == "max" ? 0 : 1});
  at.set("half_pixel", ctm == "half_pixel");
  at.set("pooled_shape", std::vector<int64_t>{ctx.attr_i("output_height", 1), ctx.attr_i("output_width", 1)});
  at.set("sampling_ratio", ctx.attr_i("sampling_ratio", 0));
  at.set("spatial_scale", static_cast<double>(ctx.attr_f("spatial_scale", 1.0f)));
  return {ctx.add1("RoiAlign", {ctx.required_input(0), ctx.required_input(1), ctx.required_input(2)}, std::move(at))};
}

Values import_max_roi_pool(ImportContext& ctx) {
  ir::Attrs at;
  at.set("pooled_shape", ctx.req_attr_ints("pooled_shape"));
  at.set("spatial_scale", static_cast<double>(ctx.attr_f("spatial_scale", 1.0f)));
  return {ctx.add1("MaxRoiPool", {ctx.required_input(0), ctx.required_input(1)}, std::move(at))};
}

}  // namespace

KILN_REGISTER_IMPORTER("", "GridSample", import_grid_sample);
KILN_REGISTER_IMPORTER("", "AffineGrid", import_affine_grid);
KILN_REGISTER_IMPORTER("", "RoiAlign", import_roi_align);
KILN_REGISTER_IMPORTER("", "MaxRoiPool", import_max_roi_pool);

}  // namespace kiln::onnx
