// Reductions: Reduce* onto Reduce, ArgMax/ArgMin onto ArgMinMax, Softmax/LogSoftmax onto SoftMax and
// Hardmax onto ArgMinMax + comparison with an index ramp. Reduce axes moved from attribute to input at
// opset 13 (ReduceSum) and 18 (the others). Before opset 13 the softmax family flattens the input to 2-D
// at `axis` and normalizes over everything from `axis` on.
#include <functional>

#include "onnx/import_context.h"

namespace kiln::onnx {
namespace {

using namespace ir_enum;
using Values = std::vector<ir::Value*>;
using Ints = std::vector<int64_t>;

Values reduce(ImportContext& ctx, int64_t op, int64_t axes_input_opset) {
  ir::Value* x = ctx.required_input(0);
  int64_t r = ImportContext::rank(x);
  Ints axes;
  bool noop_with_empty = false;
  if (ctx.opset() < axes_input_opset) {
    axes = ctx.attr_ints("axes");
  } else {
    noop_with_empty = ctx.attr_i("noop_with_empty_axes", 0) != 0;
    if (ir::Value* a = ctx.input(1)) {
      if (auto known = ctx.ints_of(a, "the axes")) {
        axes = *known;
      } else {
        // Axes fed at run time: the IR Reduce reads them from its input 1 (shapes follow at run time).
        ir::Attrs at;
        at.set("op", op);
        at.set("keep_dims", int64_t{ctx.attr_i("keepdims", 1) != 0});
        at.set("noop_with_empty_axes", int64_t{noop_with_empty});
        return {ctx.add1("Reduce", {x, a}, std::move(at))};
      }
    }
  }
  if (axes.empty()) {
    // No reduction; the element-wise parts of the op still apply (ONNX defines ReduceL1 as
    // ReduceSum(Abs(x)), ReduceSumSquare as ReduceSum(x * x), ReduceLogSum as Log(ReduceSum(x)), ...).
    if (noop_with_empty) {
      switch (op) {
        case kRL1:
        case kRL2: return {ctx.unary(x, kAbs)};
        case kRSumSquare: return {ctx.elementwise(x, x, kProd)};
        case kRLogSum: return {ctx.unary(x, kLog)};
        default: return {ctx.identity(x)};
      }
    }
    for (int64_t d = 0; d < r; ++d) axes.push_back(d);
  }
  for (auto& a : axes) a = ctx.axis(a, r, "reduce axis");
  ir::Attrs at;
  at.set("op", op);
  at.set("axes", axes);
  at.set("keep_dims", int64_t{ctx.attr_i("keepdims", 1) != 0});
  return {ctx.add1("Reduce", {x}, std::move(at))};
}

template <int64_t Op>
Values import_reduce(ImportContext& ctx) { return reduce(ctx, Op, 18); }
Values import_reduce_sum(ImportContext& ctx) { return reduce(ctx, kRSum, 13); }

ir::Value* arg_min_max(ImportContext& ctx, ir::Value* x, int64_t op, int64_t axis, bool keep, bool last) {
  ir::Attrs at;
  at.set("op", op);
  at.set("axis", axis);
  at.set("keep_dims", int64_t{keep});
  at.set("select_last_index", int64_t{last});
  return ctx.add1("ArgMinMax", {x}, std::move(at));
}

template <int64_t Op>
Values import_arg(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  int64_t axis = ctx.axis(ctx.attr_i("axis", 0), ImportContext::rank(x));
  return {arg_min_max(ctx, x, Op, axis, ctx.attr_i("keepdims", 1) != 0, ctx.attr_i("select_last_index", 0) != 0)};
}

// Applies `fn` over a single axis, after opset 13's rules or the older flatten-to-2-D ones. For the latter
// the dims from `axis` on are merged into one ([0, .., 0, -1] keeps the leading dims, dynamic or not), `fn`
// runs over that last axis and the result takes the input's shape again. `fallback` handles inputs whose
// trailing dims are dynamic (nullptr: flatten to 2-D and restore the shape with shape arithmetic).
template <class Fn>
Values softmax_family(ImportContext& ctx, Fn fn, std::function<ir::Value*(ir::Value*, int64_t)> fallback = nullptr) {
  ir::Value* x = ctx.required_input(0);
  int64_t r = ImportContext::rank(x);
  if (r == 0) ctx.fail(ParserErrorCode::kINVALID_NODE, ctx.op_type() + " needs an input of rank >= 1");
  if (ctx.opset() >= 13) return {fn(x, ctx.axis(ctx.attr_i("axis", -1), r))};
  int64_t axis = ctx.axis(ctx.attr_i("axis", 1), r);
  if (axis == r - 1) return {fn(x, axis)};  // the flattened form normalizes over the last axis alone
  Ints trailing(x->shape.begin() + axis, x->shape.end());
  bool static_tail = true;
  for (int64_t d : trailing) static_tail = static_tail && d > 0;
  if (static_tail) {
    Ints merged(axis, 0), back(axis, 0);
    merged.push_back(volume(trailing));
    back.insert(back.end(), trailing.begin(), trailing.end());
    ir::Value* y = fn(ctx.reshape(x, merged, true), axis);
    return {ctx.reshape(y, back, true)};
  }
  if (fallback) return {fallback(x, axis)};
  ir::Value* flat = ctx.flatten2d(x, axis);
  ir::Value* y = fn(flat, 1);
  return {ctx.reshape_to(y, ctx.dims_slice(x, 0, r))};
}

ir::Value* reduce_keep(ImportContext& ctx, ir::Value* x, int64_t op, const Ints& axes) {
  ir::Attrs at;
  at.set("op", op);
  at.set("axes", axes);
  at.set("keep_dims", int64_t{1});
  return ctx.add1("Reduce", {x}, std::move(at));
}

Values softmax(ImportContext& ctx, bool log) {
  auto single_axis = [&](ir::Value* x, int64_t axis) {
    ir::Attrs at;
    at.set("axis", axis);
    at.set("log", int64_t{log});
    return ctx.add1("SoftMax", {x}, std::move(at));
  };
  // Dynamic trailing dims: normalize over axes [axis, rank) with reductions on the unflattened input.
  auto over_tail = [&](ir::Value* x, int64_t axis) {
    Ints axes;
    for (int64_t d = axis; d < ImportContext::rank(x); ++d) axes.push_back(d);
    ir::Value* shifted = ctx.elementwise(x, reduce_keep(ctx, x, kRMax, axes), kSub);
    ir::Value* e = ctx.unary(shifted, kExp);
    ir::Value* sum = reduce_keep(ctx, e, kRSum, axes);
    return log ? ctx.elementwise(shifted, ctx.unary(sum, kLog), kSub) : ctx.elementwise(e, sum, kDiv);
  };
  return softmax_family(ctx, single_axis, over_tail);
}

Values import_softmax(ImportContext& ctx) { return softmax(ctx, false); }
Values import_log_softmax(ImportContext& ctx) { return softmax(ctx, true); }

// Hardmax: 1 where the index along `axis` is the (first) argmax, else 0.
Values import_hardmax(ImportContext& ctx) {
  return softmax_family(ctx, [&](ir::Value* x, int64_t axis) {
    int64_t r = ImportContext::rank(x);
    ir::Value* best = arg_min_max(ctx, x, 0, axis, true, false);  // int64, dim `axis` kept as 1
    ir::Value* n;
    if (x->shape[axis] >= 0) {
      n = ctx.const_i64_scalar(x->shape[axis]);
    } else {
      ir::Attrs at;
      at.set("axis", int64_t{0});
      at.set("mode", int64_t{0});
      n = ctx.add1("Gather", {ctx.shape_of(x), ctx.const_i64_scalar(axis)}, std::move(at));
    }
    ir::Value* ramp = ctx.add1("Range", {ctx.const_i64_scalar(0), n, ctx.const_i64_scalar(1)});
    Ints trailing;
    for (int64_t i = 1; i < r - axis; ++i) trailing.push_back(i);
    if (!trailing.empty()) ramp = ctx.unsqueeze(ramp, trailing);  // [d, 1, ..., 1]
    ir::Value* hit = ctx.elementwise(ramp, best, kEqual);
    return ctx.cast(hit, x->dtype);
  });
}

}  // namespace

KILN_REGISTER_IMPORTER("", "ReduceSum", import_reduce_sum);
KILN_REGISTER_IMPORTER("", "ReduceMean", import_reduce<kRAvg>);
KILN_REGISTER_IMPORTER("", "ReduceMax", import_reduce<kRMax>);
KILN_REGISTER_IMPORTER("", "ReduceMin", import_reduce<kRMin>);
KILN_REGISTER_IMPORTER("", "ReduceProd", import_reduce<kRProd>);
KILN_REGISTER_IMPORTER("", "ReduceL1", import_reduce<kRL1>);
KILN_REGISTER_IMPORTER("", "ReduceL2", import_reduce<kRL2>);
KILN_REGISTER_IMPORTER("", "ReduceLogSum", import_reduce<kRLogSum>);
KILN_REGISTER_IMPORTER("", "ReduceLogSumExp", import_reduce<kRLogSumExp>);
KILN_REGISTER_IMPORTER("", "ReduceSumSquare", import_reduce<kRSumSquare>);
KILN_REGISTER_IMPORTER("", "ArgMax", import_arg<0>);
KILN_REGISTER_IMPORTER("", "ArgMin", import_arg<1>);
KILN_REGISTER_IMPORTER("", "Softmax", import_softmax);
KILN_REGISTER_IMPORTER("", "LogSoftmax", import_log_softmax);
KILN_REGISTER_IMPORTER("", "Hardmax", import_hardmax);

}  // namespace kiln::onnx
