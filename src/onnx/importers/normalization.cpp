// Normalizations: BatchNormalization (inference) onto Scale (constant statistics, folded) or an ElementWise
// chain, LayerNormalization / InstanceNormalization / GroupNormalization onto Normalization, and
// LpNormalization / MeanVarianceNormalization / LRN / RMSNormalization onto Reduce, Pooling and ElementWise.
#include <cmath>

#include "onnx/import_context.h"

namespace kiln::onnx {
namespace {

using namespace ir_enum;
using Values = std::vector<ir::Value*>;
using Ints = std::vector<int64_t>;

void reject_used_outputs(ImportContext& ctx, size_t first, const std::string& what) {
  for (size_t i = first; i < ctx.num_outputs(); ++i)
    if (ctx.output_used(i))
      ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE,
               ctx.op_type() + ": output " + std::to_string(i) + " ('" + std::string(ctx.node().output[i]) + "', " +
                   what + ") is not supported");
}

HostTensor coefficients(kiln::DataType dt, const std::vector<double>& v) {
  HostTensor t(dt == kiln::DataType::kDOUBLE || dt == kiln::DataType::kHALF || dt == kiln::DataType::kBF16 ? dt : kiln::DataType::kFLOAT,
               {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) {
    switch (t.dtype()) {
      case kiln::DataType::kDOUBLE: t.mutable_data<double>()[i] = v[i]; break;
      case kiln::DataType::kHALF: t.mutable_data<uint16_t>()[i] = float_to_half(static_cast<float>(v[i])); break;
      case kiln::DataType::kBF16: t.mutable_data<uint16_t>()[i] = float_to_bf16(static_cast<float>(v[i])); break;
      default: t.mutable_data<float>()[i] = static_cast<float>(v[i]); break;
    }
  }
  return t;
}

// y = (x - mean) / sqrt(var + eps) * scale + B, per channel (axis 1).
Values import_batch_norm(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  ir::Value* scale = ctx.required_input(1);
  ir::Value* bias = ctx.required_input(2);
  ir::Value* mean = ctx.required_input(3);
  ir::Value* var = ctx.required_input(4);
  if (ctx.attr_i("training_mode", 0) != 0)
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR, "BatchNormalization: training_mode=1 is not supported");
  if (ctx.opset() < 9 && ctx.attr_i("spatial", 1) == 0)
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR, "BatchNormalization: spatial=0 is not supported");
  reject_used_outputs(ctx, 1, "a training statistic");
  if (x->shape.size() < 2)
    ctx.fail(ParserErrorCode::kINVALID_NODE, "BatchNormalization needs an input of rank >= 2, got " + dims_str(x->shape));
  double eps = ctx.attr_f("epsilon", 1e-5f);
  auto s = ctx.floats_of(scale), b = ctx.floats_of(bias), m = ctx.floats_of(mean), v = ctx.floats_of(var);
  if (s && b && m && v) {
    size_t c = s->size();
    if (b->size() != c || m->size() != c || v->size() != c)
      ctx.fail(ParserErrorCode::kINVALID_NODE, "BatchNormalization: scale, B, mean and var must have the same length");
    std::vector<double> mul(c), add(c);
    for (size_t i = 0; i < c; ++i) {
      mul[i] = (*s)[i] / std::sqrt((*v)[i] + eps);
      add[i] = (*b)[i] - (*m)[i] * mul[i];
    }
    ir::Value* shift_c = ctx.constant(coefficients(x->dtype, add));
    ir::Value* scale_c = ctx.constant(coefficients(x->dtype, mul));
    ir::Attrs at;
    at.set("mode", int64_t{1});
    at.set("channel_axis", int64_t{1});
    return {ctx.add1("Scale", {x, shift_c, scale_c}, std::move(at))};
  }
  // Run-time statistics: a = scale / sqrt(var + eps), b = B - mean * a, y = x * a + b (a, b as [C, 1, ...]).
  ir::Value* eps_c = ctx.const_scalar(var->dtype, eps);
  ir::Value* a = ctx.elementwise(scale, ctx.unary(ctx.unary(ctx.elementwise(var, eps_c, kSum), kSqrt), kRecip), kProd);
  ir::Value* shift = ctx.elementwise(bias, ctx.elementwise(mean, a, kProd), kSub);
  Ints trailing;
  for (int64_t i = 1; i < ImportContext::rank(x) - 1; ++i) trailing.push_back(i);
  if (!trailing.empty()) {
    a = ctx.unsqueeze(a, trailing);
    shift = ctx.unsqueeze(shift, trailing);
  }
  return {ctx.elementwise(ctx.elementwise(x, a, kProd), shift, kSum)};
}

ir::Value* normalization(ImportContext& ctx, ir::Value* x, ir::Value* scale, ir::Value* bias, Ints axes,
                         double eps, int64_t groups) {
  ir::Attrs at;
  at.set("axes", std::move(axes));
  at.set("epsilon", eps);
  at.set("num_groups", groups);
  return ctx.add1("Normalization", {x, scale, bias}, std::move(at));
}

// A tensor of zeros shaped like v (for an omitted bias).
ir::Value* zeros_like(ImportContext& ctx, ir::Value* v) {
  if (dims_known(v->shape)) return ctx.constant(HostTensor(v->dtype, v->shape));
  HostTensor z(v->dtype, {1});
  ir::Attrs at;
  at.set("value", std::move(z));
  return ctx.add1("ConstantOfShape", {ctx.shape_of(v)}, std::move(at));
}

Values import_layer_norm(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  ir::Value* scale = ctx.required_input(1);
  ir::Value* bias = ctx.input(2);
  int64_t r = ImportContext::rank(x);
  int64_t axis = ctx.axis(ctx.attr_i("axis", -1), r);
  Ints axes;
  for (int64_t d = axis; d < r; ++d) axes.push_back(d);
  double eps = ctx.attr_f("epsilon", 1e-5f);
  if (!bias) bias = zeros_like(ctx, scale);
  Values outs{normalization(ctx, x, scale, bias, axes, eps, 1)};
  if (ctx.output_used(1) || ctx.output_used(2)) {
    // The statistics (in float32, the stash type), dims from `axis` on kept as 1.
    if (ctx.attr_i("stash_type", 1) != 1)
      ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR, "LayerNormalization: only stash_type 1 (float32) is supported");
    ir::Value* xf = x->dtype == kiln::DataType::kFLOAT ? x : ctx.cast(x, kiln::DataType::kFLOAT);
    auto mean_of = [&](ir::Value* v) {
      ir::Attrs at;
      at.set("op", int64_t{kRAvg});
      at.set("axes", axes);
      at.set("keep_dims", int64_t{1});
      return ctx.add1("Reduce", {v}, std::move(at));
    };
    ir::Value* mean = mean_of(xf);
    ir::Value* d = ctx.elementwise(xf, mean, kSub);
    ir::Value* var = mean_of(ctx.elementwise(d, d, kProd));
    ir::Value* inv = ctx.unary(ctx.unary(ctx.elementwise(var, ctx.const_scalar(kiln::DataType::kFLOAT, eps), kSum), kSqrt),
                               kRecip);
    outs.push_back(mean);
    outs.push_back(inv);
  }
  return outs;
}

// Per-channel [C] parameters as [1, C, 1, ...] for a rank-r input.
ir::Value* channel_param(ImportContext& ctx, ir::Value* p, int64_t r) {
  Ints axes{0};
  for (int64_t i = 2; i < r; ++i) axes.push_back(i);
  return ctx.unsqueeze(p, axes);
}

Values import_instance_norm(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  int64_t r = ImportContext::rank(x);
  if (r < 3) ctx.fail(ParserErrorCode::kINVALID_NODE, "InstanceNormalization needs [N, C, spatial...], got " + dims_str(x->shape));
  Ints axes;
  for (int64_t d = 2; d < r; ++d) axes.push_back(d);
  return {normalization(ctx, x, channel_param(ctx, ctx.required_input(1), r), channel_param(ctx, ctx.required_input(2), r),
                        axes, ctx.attr_f("epsilon", 1e-5f), 1)};
}

// GroupNormalization: opset 18 gives scale/bias per group, opset 21 per channel.
Values import_group_norm(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  ir::Value* scale = ctx.required_input(1);
  ir::Value* bias = ctx.required_input(2);
  int64_t r = ImportContext::rank(x);
  if (r < 3) ctx.fail(ParserErrorCode::kINVALID_NODE, "GroupNormalization needs [N, C, spatial...], got " + dims_str(x->shape));
  int64_t g = ctx.req_attr_i("num_groups");
  int64_t c = x->shape[1];
  if (g <= 0 || (c >= 0 && c % g != 0))
    ctx.fail(ParserErrorCode::kINVALID_NODE, "GroupNormalization: " + std::to_string(c) + " channels do not split into " +
                                                 std::to_string(g) + " groups");
  bool per_group = ctx.opset() < 21 && scale->shape.size() == 1 && scale->shape[0] == g && c != g;
  if (per_group) {  // repeat each group's parameter over its channels
    if (c < 0) ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DYNAMIC, "GroupNormalization (opset 18) needs a static channel count");
    auto expand = [&](ir::Value* p) {
      ir::Value* col = ctx.reshape(p, {g, 1}, false);
      ir::Value* wide = ctx.add1("Expand", {col, ctx.const_i64({g, c / g})});
      return ctx.reshape(wide, {c}, false);
    };
    scale = expand(scale);
    bias = expand(bias);
  }
  Ints axes;
  for (int64_t d = (g == 1 ? 1 : 2); d < r; ++d) axes.push_back(d);
  return {normalization(ctx, x, channel_param(ctx, scale, r), channel_param(ctx, bias, r), axes,
                        ctx.attr_f("epsilon", 1e-5f), g == 1 ? 1 : g)};
}

Values import_lp_norm(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  int64_t p = ctx.attr_i("p", 2);
  if (p != 1 && p != 2) ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR, "LpNormalization: p must be 1 or 2, got " + std::to_string(p));
  ir::Attrs at;
  at.set("op", p == 1 ? int64_t{kRL1} : int64_t{kRL2});
  at.set("axes", Ints{ctx.axis(ctx.attr_i("axis", -1), ImportContext::rank(x))});
  at.set("keep_dims", int64_t{1});
  ir::Value* norm = ctx.add1("Reduce", {x}, std::move(at));
  // A zero norm means an all-zero slice, which stays zero (divide it by 1 instead of 0).
  ir::Value* is_zero = ctx.elementwise(norm, ctx.const_scalar(x->dtype, 0.0), kEqual);
  ir::Value* safe = ctx.add1("Select", {is_zero, ctx.const_scalar(x->dtype, 1.0), norm});
  return {ctx.elementwise(x, safe, kDiv)};
}

ir::Value* reduce_mean_keep(ImportContext& ctx, ir::Value* x, const Ints& axes) {
  ir::Attrs at;
  at.set("op", int64_t{kRAvg});
  at.set("axes", axes);
  at.set("keep_dims", int64_t{1});
  return ctx.add1("Reduce", {x}, std::move(at));
}

// RMSNormalization (opset 23): y = x / sqrt(mean(x^2 over axes [axis, rank)) + epsilon) * scale, the
// statistics computed in float32 (stash_type 1) and the result cast back to x's type.
Values import_rms_norm(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  ir::Value* scale = ctx.required_input(1);
  int64_t r = ImportContext::rank(x);
  int64_t axis = ctx.axis(ctx.attr_i("axis", -1), r);
  if (ctx.attr_i("stash_type", 1) != 1)
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR, "RMSNormalization: only stash_type 1 (float32) is supported");
  double eps = ctx.attr_f("epsilon", 1e-5f);
  Ints axes;
  for (int64_t d = axis; d < r; ++d) axes.push_back(d);
  bool is_float = x->dtype == kiln::DataType::kFLOAT;
  ir::Value* xf = is_float ? x : ctx.cast(x, kiln::DataType::kFLOAT);
  ir::Value* ms = reduce_mean_keep(ctx, ctx.elementwise(xf, xf, kProd), axes);
  ir::Value* rms = ctx.unary(ctx.elementwise(ms, ctx.const_scalar(kiln::DataType::kFLOAT, eps), kSum), kSqrt);
  ir::Value* normed = ctx.elementwise(xf, rms, kDiv);
  if (!is_float) normed = ctx.cast(normed, x->dtype);
  return {ctx.elementwise(normed, scale, kProd)};
}

// MeanVarianceNormalization, as ONNX defines it: (x - E[x]) / (sqrt(E[x^2] - E[x]^2) + 1e-9).
Values import_mvn(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  int64_t r = ImportContext::rank(x);
  Ints axes = ctx.attr_ints("axes", {0, 2, 3});
  for (auto& a : axes) a = ctx.axis(a, r, "axis");
  ir::Value* mean = reduce_mean_keep(ctx, x, axes);
  ir::Value* mean_sq = reduce_mean_keep(ctx, ctx.elementwise(x, x, kProd), axes);
  ir::Value* var = ctx.elementwise(mean_sq, ctx.elementwise(mean, mean, kProd), kSub);
  ir::Value* std = ctx.elementwise(ctx.unary(var, kSqrt), ctx.const_scalar(x->dtype, 1e-9), kSum);
  return {ctx.elementwise(ctx.elementwise(x, mean, kSub), std, kDiv)};
}

// LRN across channels: y = x / (bias + alpha / size * sum of x^2 over `size` neighbouring channels)^beta.
// The windowed sum is an average pooling (padding counted) over the channel axis of x^2 seen as
// [N, 1, C, rest].
Values import_lrn(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  int64_t r = ImportContext::rank(x);
  if (r < 3 || x->shape[1] < 0)
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_SHAPE, "LRN needs an input [N, C, ...] with a static C, got " + dims_str(x->shape));
  int64_t size = ctx.req_attr_i("size");
  double alpha = ctx.attr_f("alpha", 1e-4f), beta = ctx.attr_f("beta", 0.75f), bias = ctx.attr_f("bias", 1.0f);
  if (size < 1) ctx.fail(ParserErrorCode::kINVALID_NODE, "LRN: size must be positive, got " + std::to_string(size));
  int64_t c = x->shape[1];
  ir::Value* sq = ctx.elementwise(x, x, kProd);
  ir::Value* planes = ctx.reshape(sq, {0, 1, c, -1}, true);
  ir::Attrs at;
  at.set("type", int64_t{1});
  at.set("window", Ints{size, 1});
  at.set("stride", Ints{1, 1});
  at.set("dilation", Ints{1, 1});
  at.set("pre_padding", Ints{(size - 1) / 2, 0});
  at.set("post_padding", Ints{size - 1 - (size - 1) / 2, 0});
  at.set("padding_mode", int64_t{0});
  at.set("exclude_pad", int64_t{0});
  at.set("blend_factor", 0.0);
  ir::Value* avg = ctx.add1("Pooling", {planes}, std::move(at));  // sum / size
  ir::Value* avg_x = ctx.reshape_to(avg, ctx.dims_slice(x, 0, r));
  ir::Value* base = ctx.elementwise(ctx.elementwise(avg_x, ctx.const_scalar(x->dtype, alpha), kProd),
                                    ctx.const_scalar(x->dtype, bias), kSum);
  ir::Value* den = ctx.elementwise(base, ctx.const_scalar(x->dtype, beta), kPow);
  return {ctx.elementwise(x, den, kDiv)};
}

}  // namespace

KILN_REGISTER_IMPORTER("", "MeanVarianceNormalization", import_mvn);
KILN_REGISTER_IMPORTER("", "LRN", import_lrn);
KILN_REGISTER_IMPORTER("", "BatchNormalization", import_batch_norm);
KILN_REGISTER_IMPORTER("", "LayerNormalization", import_layer_norm);
KILN_REGISTER_IMPORTER("", "InstanceNormalization", import_instance_norm);
KILN_REGISTER_IMPORTER("", "GroupNormalization", import_group_norm);
KILN_REGISTER_IMPORTER("", "LpNormalization", import_lp_norm);
KILN_REGISTER_IMPORTER("", "RMSNormalization", import_rms_norm);

}  // namespace kiln::onnx
