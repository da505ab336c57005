// Activation-style ONNX ops onto the IR Activation op (ActivationType values in ir/OPS.md), plus PRelu and
// Clip with run-time bounds, which become ElementWise chains.
#include <cmath>
#include <limits>

#include "onnx/import_context.h"

namespace kiln::onnx {
namespace {

using namespace ir_enum;
using Values = std::vector<ir::Value*>;

enum Act : int64_t {
  kRelu = 0, kSigmoid = 1, kTanh = 2, kLeakyRelu = 3, kElu = 4, kSelu = 5, kSoftsign = 6, kSoftplus = 7, kClip = 8,
  kHardSigmoid = 9, kScaledTanh = 10, kThresholdedRelu = 11, kGeluErf = 12, kGeluTanh = 13, kHardSwish = 64,
  kSilu = 65, kMish = 66, kCelu = 67, kShrink = 68
};

ir::Value* activation(ImportContext& ctx, ir::Value* x, int64_t type, double alpha = 0, double beta = 0) {
  ir::Attrs at;
  at.set("type", type);
  at.set("alpha", alpha);
  at.set("beta", beta);
  return ctx.add1("Activation", {x}, std::move(at));
}

template <int64_t Type>
Values simple(ImportContext& ctx) {
  return {activation(ctx, ctx.required_input(0), Type)};
}

Values import_leaky_relu(ImportContext& ctx) {
  return {activation(ctx, ctx.required_input(0), kLeakyRelu, ctx.attr_f("alpha", 0.01f))};
}
Values import_elu(ImportContext& ctx) {
  return {activation(ctx, ctx.required_input(0), kElu, ctx.attr_f("alpha", 1.0f))};
}
Values import_selu(ImportContext& ctx) {
  return {activation(ctx, ctx.required_input(0), kSelu, ctx.attr_f("alpha", 1.67326319217681884765625f),
                     ctx.attr_f("gamma", 1.05070102214813232421875f))};
}
Values import_softplus(ImportContext& ctx) { return {activation(ctx, ctx.required_input(0), kSoftplus, 1.0, 1.0)}; }
Values import_hard_sigmoid(ImportContext& ctx) {
  return {activation(ctx, ctx.required_input(0), kHardSigmoid, ctx.attr_f("alpha", 0.2f), ctx.attr_f("beta", 0.5f))};
}
Values import_thresholded_relu(ImportContext& ctx) {
  return {activation(ctx, ctx.required_input(0), kThresholdedRelu, ctx.attr_f("alpha", 1.0f))};
}
Values import_celu(ImportContext& ctx) {
  return {activation(ctx, ctx.required_input(0), kCelu, ctx.attr_f("alpha", 1.0f))};
}
Values import_shrink(ImportContext& ctx) {
  return {activation(ctx, ctx.required_input(0), kShrink, ctx.attr_f("bias", 0.0f), ctx.attr_f("lambd", 0.5f))};
}

Values import_gelu(ImportContext& ctx) {
  std::string approx = ctx.attr_s("approximate", "none");
  if (approx != "none" && approx != "tanh")
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR, "Gelu: approximate must be 'none' or 'tanh', got '" + approx + "'");
  return {activation(ctx, ctx.required_input(0), approx == "tanh" ? kGeluTanh : kGeluErf)};
}

// PRelu: max(0, x) + slope * min(0, x), the slope broadcast against x.
Values import_prelu(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  ir::Value* slope = ctx.required_input(1);
  if (slope->dtype != x->dtype) slope = ctx.cast(slope, x->dtype);
  // Before opset 7 a 1-D slope of more than one value is per channel (axis 1), not numpy-broadcast.
  int64_t rx = ImportContext::rank(x);
  if (ctx.opset() < 7 && ImportContext::rank(slope) == 1 && slope->shape[0] != 1 && rx > 2) {
    std::vector<int64_t> axes;
    for (int64_t i = 1; i < rx - 1; ++i) axes.push_back(i);
    slope = ctx.unsqueeze(slope, axes);
  }
  ir::Value* zero = ctx.const_scalar(x->dtype, 0.0);
  ir::Value* pos = ctx.elementwise(x, zero, kMax);
  ir::Value* neg = ctx.elementwise(x, zero, kMin);
  return {ctx.elementwise(pos, ctx.elementwise(neg, slope, kProd), kSum)};
}

// Clip: bounds are attributes before opset 11 and optional inputs from 11. Known bounds become one
// Activation CLIP; run-time bounds an ElementWise MAX then MIN. A missing bound is unbounded.
Values import_clip(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  const bool is_int = !dtype_is_float(x->dtype);
  const double lo_inf = is_int ? static_cast<double>(std::numeric_limits<int64_t>::lowest())
                               : -std::numeric_limits<double>::infinity();
  const double hi_inf = is_int ? static_cast<double>(std::numeric_limits<int64_t>::max())
                               : std::numeric_limits<double>::infinity();
  if (ctx.opset() < 11) {
    double lo = ctx.has_attr("min") ? ctx.attr_f("min", 0) : lo_inf;
    double hi = ctx.has_attr("max") ? ctx.attr_f("max", 0) : hi_inf;
    return {activation(ctx, x, kClip, lo, hi)};
  }
  ir::Value* min_v = ctx.input(1);
  ir::Value* max_v = ctx.input(2);
  auto known = [&](ir::Value* v, double def, bool* ok) -> double {
    *ok = true;
    if (!v) return def;
    const HostTensor* t = ctx.value_of(v);
    if (!t) {
      *ok = false;
      return 0;
    }
    if (t->numel() != 1)
      ctx.fail(ParserErrorCode::kINVALID_NODE, "Clip: the bounds must be scalars, got shape " + dims_str(t->shape()));
    return t->get_f64(0);
  };
  bool lo_ok, hi_ok;
  double lo = known(min_v, lo_inf, &lo_ok), hi = known(max_v, hi_inf, &hi_ok);
  if (lo_ok && hi_ok && !is_int) return {activation(ctx, x, kClip, lo, hi)};
  ir::Value* y = x;
  if (min_v) y = ctx.elementwise(y, min_v->dtype == x->dtype ? min_v : ctx.cast(min_v, x->dtype), kMax);
  if (max_v) y = ctx.elementwise(y, max_v->dtype == x->dtype ? max_v : ctx.cast(max_v, x->dtype), kMin);
  if (y == x) y = ctx.identity(x);
  return {y};
}

}  // namespace

KILN_REGISTER_IMPORTER("", "Relu", simple<kRelu>);
KILN_REGISTER_IMPORTER("", "Sigmoid", simple<kSigmoid>);
KILN_REGISTER_IMPORTER("", "Tanh", simple<kTanh>);
KILN_REGISTER_IMPORTER("", "Softsign", simple<kSoftsign>);
KILN_REGISTER_IMPORTER("", "HardSwish", simple<kHardSwish>);
KILN_REGISTER_IMPORTER("", "Mish", simple<kMish>);
KILN_REGISTER_IMPORTER("", "LeakyRelu", import_leaky_relu);
KILN_REGISTER_IMPORTER("", "Elu", import_elu);
KILN_REGISTER_IMPORTER("", "Selu", import_selu);
KILN_REGISTER_IMPORTER("", "Softplus", import_softplus);
KILN_REGISTER_IMPORTER("", "HardSigmoid", import_hard_sigmoid);
KILN_REGISTER_IMPORTER("", "ThresholdedRelu", import_thresholded_relu);
KILN_REGISTER_IMPORTER("", "Celu", import_celu);
KILN_REGISTER_IMPORTER("", "Shrink", import_shrink);
KILN_REGISTER_IMPORTER("", "Gelu", import_gelu);
KILN_REGISTER_IMPORTER("", "PRelu", import_prelu);
KILN_REGISTER_IMPORTER("", "Clip", import_clip);

}  // namespace kiln::onnx
