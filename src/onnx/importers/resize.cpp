// Resize (opset 10: scales only, asymmetric coordinates; 11+: roi/scales/sizes and the coordinate
// transformation modes; 18: axes) and Upsample (opset 7-9) onto the IR Resize op.
#include "onnx/import_context.h"

namespace kiln::onnx {
namespace {

using Values = std::vector<ir::Value*>;
using Ints = std::vector<int64_t>;

enum Coord : int64_t {
  kAlignCorners = 0, kAsymmetric = 1, kHalfPixel = 2, kPytorchHalfPixel = 64, kTfHalfPixelForNn = 65,
  kTfCropAndResize = 66
};
enum Rounding : int64_t { kHalfUp = 0, kHalfDown = 1, kFloor = 2, kCeil = 3 };

int64_t resize_mode(ImportContext& ctx, const std::string& m) {
  if (m == "nearest") return 0;
  if (m == "linear" || m == "bilinear" || m == "trilinear") return 1;
  if (m == "cubic" || m == "bicubic") return 2;
  ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR, ctx.op_type() + ": unknown mode '" + m + "'");
}

// An input that is omitted, or given as an empty tensor, counts as absent.
ir::Value* present(ImportContext& ctx, size_t i) {
  ir::Value* v = ctx.input(i);
  if (!v) return nullptr;
  if (v->shape.size() == 1 && v->shape[0] == 0) return nullptr;
  if (const HostTensor* t = ctx.value_of(v); t && t->numel() == 0) return nullptr;
  return v;
}

Values resize_with(ImportContext& ctx, ir::Value* x, ir::Value* scales, ir::Value* sizes, ir::Attrs at) {
  int64_t r = ImportContext::rank(x);
  Ints axes = ctx.attr_ints("axes");
  for (auto& a : axes) a = ctx.axis(a, r, "axis");
  if (scales) {
    if (auto v = ctx.floats_of(scales)) {
      std::vector<double> s = *v;
      if (!axes.empty()) {
        if (s.size() != axes.size())
          ctx.fail(ParserErrorCode::kINVALID_NODE, ctx.op_type() + ": " + std::to_string(s.size()) + " scales for " +
                                                       std::to_string(axes.size()) + " axes");
        std::vector<double> full(r, 1.0);
        for (size_t i = 0; i < axes.size(); ++i) full[axes[i]] = s[i];
        s = full;
      }
      for (auto& f : s) f = static_cast<float>(f);
      at.set("scales", s);
      scales = nullptr;
    } else {
      if (!axes.empty()) at.set("axes", axes);  // the run-time scales then hold one value per listed axis
      if (scales->dtype != kiln::DataType::kFLOAT) scales = ctx.cast(scales, kiln::DataType::kFLOAT);
    }
  } else if (sizes) {
    std::string policy = ctx.attr_s("keep_aspect_ratio_policy", "stretch");
    if (policy != "stretch")
      ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR, ctx.op_type() + ": keep_aspect_ratio_policy '" + policy +
                                                            "' is not supported (only 'stretch')");
    if (auto v = ctx.ints_of(sizes, "the sizes")) {
      Ints s = *v;
      if (!axes.empty()) {
        if (s.size() != axes.size())
          ctx.fail(ParserErrorCode::kINVALID_NODE, ctx.op_type() + ": " + std::to_string(s.size()) + " sizes for " +
                                                       std::to_string(axes.size()) + " axes");
        Ints full = x->shape;
        for (size_t i = 0; i < axes.size(); ++i) full[axes[i]] = s[i];
        if (!dims_known(full))
          ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DYNAMIC,
                   ctx.op_type() + ": sizes for some axes need the other dims static, got " + dims_str(x->shape));
        s = full;
      }
      at.set("sizes", s);
      sizes = nullptr;
    } else {
      if (!axes.empty()) at.set("axes", axes);  // the run-time sizes then hold one value per listed axis
      if (sizes->dtype != kiln::DataType::kINT64) sizes = ctx.cast(sizes, kiln::DataType::kINT64);
    }
  } else {
    ctx.fail(ParserErrorCode::kINVALID_NODE, ctx.op_type() + " needs scales or sizes");
  }
  return {ctx.add1("Resize", {x, sizes, scales}, std::move(at))};
}

// Upsample and opset-10 Resize: asymmetric coordinates; nearest rounds down on axes that grow and up on
// axes that shrink (ONNX Runtime's rule), so with known scales of both kinds the shrinking axes are
// resized first, then the growing ones (nearest is separable, so this is exact).
Values legacy_resize(ImportContext& ctx, ir::Value* x, ir::Value* scales_in, std::vector<double> scales) {
  int64_t mode = resize_mode(ctx, ctx.attr_s("mode", "nearest"));
  auto attrs = [&](int64_t rounding) {
    ir::Attrs at;
    at.set("mode", mode);
    at.set("coordinate_transformation", int64_t{kAsymmetric});
    at.set("nearest_rounding", rounding);
    return at;
  };
  if (scales_in) {
    auto v = ctx.floats_of(scales_in);
    if (!v) return resize_with(ctx, x, scales_in, nullptr, attrs(kFloor));  // run-time scales: assume growth
    scales = *v;
  }
  if (static_cast<int64_t>(scales.size()) != ImportContext::rank(x))
    ctx.fail(ParserErrorCode::kINVALID_NODE, ctx.op_type() + ": " + std::to_string(scales.size()) + " scales for a rank-" +
                                                 std::to_string(ImportContext::rank(x)) + " input");
  for (auto& f : scales) f = static_cast<float>(f);
  std::vector<double> down(scales.size(), 1.0), up(scales.size(), 1.0);
  bool any_down = false, any_up = false;
  for (size_t i = 0; i < scales.size(); ++i) {
    if (scales[i] < 1.0 && mode == 0) {
      down[i] = scales[i];
      any_down = true;
    } else {
      up[i] = scales[i];
      any_up = any_up || scales[i] != 1.0;
    }
  }
  ir::Value* y = x;
  if (any_down) {
    ir::Attrs at = attrs(kCeil);
    at.set("scales", down);
    y = ctx.add1("Resize", {y}, std::move(at));
  }
  if (any_up || !any_down) {
    ir::Attrs at = attrs(kFloor);
    at.set("scales", up);
    y = ctx.add1("Resize", {y}, std::move(at));
  }
  return {y};
}

Values import_resize(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  if (ctx.opset() < 11) return legacy_resize(ctx, x, ctx.required_input(1), {});  // X, scales
  ir::Attrs at;
  at.set("mode", resize_mode(ctx, ctx.attr_s("mode", "nearest")));
  if (ctx.attr_i("antialias", 0) != 0)
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR, "Resize: antialias=1 is not supported");
  std::string ct = ctx.attr_s("coordinate_transformation_mode", "half_pixel");
  int64_t coord;
  if (ct == "half_pixel") coord = kHalfPixel;
  else if (ct == "asymmetric") coord = kAsymmetric;
  else if (ct == "align_corners") coord = kAlignCorners;
  else if (ct == "pytorch_half_pixel") coord = kPytorchHalfPixel;
  else if (ct == "tf_half_pixel_for_nn") coord = kTfHalfPixelForNn;
  else if (ct == "tf_crop_and_resize")
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR,
             "Resize: coordinate_transformation_mode 'tf_crop_and_resize' (which uses the roi input) is not supported");
  else
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR, "Resize: coordinate_transformation_mode '" + ct + "' is not supported");
  std::string nm = ctx.attr_s("nearest_mode", "round_prefer_floor");
  int64_t rounding;
  if (nm == "round_prefer_floor") rounding = kHalfDown;
  else if (nm == "round_prefer_ceil") rounding = kHalfUp;
  else if (nm == "floor") rounding = kFloor;
  else if (nm == "ceil") rounding = kCeil;
  else ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR, "Resize: unknown nearest_mode '" + nm + "'");
  at.set("coordinate_transformation", coord);
  at.set("nearest_rounding", rounding);
  at.set("cubic_coeff", static_cast<double>(ctx.attr_f("cubic_coeff_a", -0.75f)));
  at.set("exclude_outside", ctx.attr_i("exclude_outside", 0));
  at.set("extrapolation_value", static_cast<double>(ctx.attr_f("extrapolation_value", 0.0f)));
  return resize_with(ctx, x, present(ctx, 2), present(ctx, 3), std::move(at));
}

Values import_upsample(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  if (ctx.has_input(1)) return legacy_resize(ctx, x, ctx.input(1), {});  // opset 9: scales input
  std::vector<float> s = ctx.attr_floats("scales");
  if (s.empty()) ctx.fail(ParserErrorCode::kINVALID_NODE, "Upsample needs scales");
  return legacy_resize(ctx, x, nullptr, std::vector<double>(s.begin(), s.end()));
}

}  // namespace

KILN_REGISTER_IMPORTER("", "Resize", import_resize);
KILN_REGISTER_IMPORTER("", "Upsample", import_upsample);

}  // namespace kiln::onnx
