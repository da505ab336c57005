// Pointwise ONNX ops onto ElementWise / Unary / Select: arithmetic (Add, Sub, Mul, Div, Pow, Mod), the
// variadic Max/Min/Sum/Mean, comparisons, logic, BitShift, the unary math ops, IsNaN/IsInf and Where.
#include <limits>

#include "onnx/import_context.h"

namespace kiln::onnx {
namespace {

using namespace ir_enum;
using Values = std::vector<ir::Value*>;

// Before opset 7 the binary ops broadcast only with attribute broadcast = 1, and then B's dims line up with
// A's starting at `axis` (default: B's dims are A's trailing dims). Numpy broadcasting covers the default and
// broadcast = 0 (equal shapes); an explicit axis is honoured by appending size-1 dims to B.
ir::Value* legacy_broadcast(ImportContext& ctx, ir::Value* a, ir::Value* b) {
  if (ctx.opset() >= 7 || ctx.attr_i("broadcast", 0) == 0 || !ctx.has_attr("axis")) return b;
  int64_t ra = ImportContext::rank(a), rb = ImportContext::rank(b);
  int64_t axis = ctx.axis(ctx.attr_i("axis", 0), ra);
  int64_t trailing = ra - axis - rb;
  if (trailing < 0)
    ctx.fail(ParserErrorCode::kINVALID_NODE,
             ctx.op_type() + " (opset " + std::to_string(ctx.opset()) + "): B of rank " + std::to_string(rb) +
                 " does not fit in A of rank " + std::to_string(ra) + " at axis " + std::to_string(axis));
  if (trailing == 0) return b;
  std::vector<int64_t> axes;
  for (int64_t i = 0; i < trailing; ++i) axes.push_back(rb + i);
  return ctx.unsqueeze(b, axes);
}

Values binary(ImportContext& ctx, int64_t op) {
  ir::Value* a = ctx.required_input(0);
  return {ctx.elementwise(a, legacy_broadcast(ctx, a, ctx.required_input(1)), op)};
}

Values import_add(ImportContext& ctx) { return binary(ctx, kSum); }
Values import_sub(ImportContext& ctx) { return binary(ctx, kSub); }
Values import_mul(ImportContext& ctx) { return binary(ctx, kProd); }
Values import_div(ImportContext& ctx) { return binary(ctx, kDiv); }
Values import_equal(ImportContext& ctx) { return binary(ctx, kEqual); }
Values import_less(ImportContext& ctx) { return binary(ctx, kLess); }
Values import_greater(ImportContext& ctx) { return binary(ctx, kGreater); }
Values import_less_equal(ImportContext& ctx) { return binary(ctx, kLessEqual); }
Values import_greater_equal(ImportContext& ctx) { return binary(ctx, kGreaterEqual); }
Values import_and(ImportContext& ctx) { return binary(ctx, kAnd); }
Values import_or(ImportContext& ctx) { return binary(ctx, kOr); }
Values import_xor(ImportContext& ctx) { return binary(ctx, kXor); }
Values import_bitshift(ImportContext& ctx) {
  std::string dir = ctx.attr_s("direction", "");
  if (dir != "LEFT" && dir != "RIGHT")
    ctx.fail(ParserErrorCode::kINVALID_NODE, "BitShift: direction must be \"LEFT\" or \"RIGHT\", got \"" + dir + "\"");
  return binary(ctx, dir == "LEFT" ? kShiftLeft : kShiftRight);
}

// Pow's exponent may have another type than the base (opset 12+); the result has the base's type.
Values import_pow(ImportContext& ctx) {
  ir::Value* a = ctx.required_input(0);
  ir::Value* b = legacy_broadcast(ctx, a, ctx.required_input(1));
  if (b->dtype != a->dtype) b = ctx.cast(b, a->dtype);
  return {ctx.elementwise(a, b, kPow)};
}

Values import_mod(ImportContext& ctx) {
  int64_t fmod = ctx.attr_i("fmod", 0);
  ir::Value* a = ctx.required_input(0);
  ir::Attrs at;
  at.set("op", int64_t{kMod});
  at.set("fmod", fmod);
  return {ctx.add1("ElementWise", {a, ctx.required_input(1)}, std::move(at))};
}

// Max, Min, Sum, Mean: any number of inputs (at least one), broadcast together.
Values variadic(ImportContext& ctx, int64_t op, bool mean) {
  Values ins;
  for (size_t i = 0; i < ctx.num_inputs(); ++i)
    if (ir::Value* v = ctx.input(i)) ins.push_back(v);
  if (ins.empty()) ctx.fail(ParserErrorCode::kINVALID_NODE, ctx.op_type() + " needs at least one input");
  if (ins.size() == 1) return {ctx.identity(ins[0])};
  ir::Value* acc = ins[0];
  for (size_t i = 1; i < ins.size(); ++i) acc = ctx.elementwise(acc, ins[i], op);
  if (mean) acc = ctx.elementwise(acc, ctx.const_scalar(acc->dtype, static_cast<double>(ins.size())), kDiv);
  return {acc};
}

Values import_max(ImportContext& ctx) { return variadic(ctx, kMax, false); }
Values import_min(ImportContext& ctx) { return variadic(ctx, kMin, false); }
Values import_sum(ImportContext& ctx) { return variadic(ctx, kSum, false); }
Values import_mean(ImportContext& ctx) { return variadic(ctx, kSum, true); }

template <int64_t Op>
Values unary(ImportContext& ctx) {
  return {ctx.unary(ctx.required_input(0), Op)};
}

Values import_isinf(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  bool neg = ctx.attr_i("detect_negative", 1) != 0, pos = ctx.attr_i("detect_positive", 1) != 0;
  if (neg && pos) return {ctx.unary(x, kIsInf)};
  double target = pos ? std::numeric_limits<double>::infinity()
                      : neg ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
  // Equal to +inf / -inf; with neither flag, a comparison with NaN (always false).
  return {ctx.elementwise(x, ctx.const_scalar(x->dtype, target), kEqual)};
}

Values import_where(ImportContext& ctx) {
  return {ctx.add1("Select", {ctx.required_input(0), ctx.required_input(1), ctx.required_input(2)})};
}

}  // namespace

KILN_REGISTER_IMPORTER("", "Add", import_add);
KILN_REGISTER_IMPORTER("", "Sub", import_sub);
KILN_REGISTER_IMPORTER("", "Mul", import_mul);
KILN_REGISTER_IMPORTER("", "Div", import_div);
KILN_REGISTER_IMPORTER("", "Pow", import_pow);
KILN_REGISTER_IMPORTER("", "Mod", import_mod);
KILN_REGISTER_IMPORTER("", "Max", import_max);
KILN_REGISTER_IMPORTER("", "Min", import_min);
KILN_REGISTER_IMPORTER("", "Sum", import_sum);
KILN_REGISTER_IMPORTER("", "Mean", import_mean);
KILN_REGISTER_IMPORTER("", "Equal", import_equal);
KILN_REGISTER_IMPORTER("", "Less", import_less);
KILN_REGISTER_IMPORTER("", "Greater", import_greater);
KILN_REGISTER_IMPORTER("", "LessOrEqual", import_less_equal);
KILN_REGISTER_IMPORTER("", "GreaterOrEqual", import_greater_equal);
KILN_REGISTER_IMPORTER("", "And", import_and);
KILN_REGISTER_IMPORTER("", "Or", import_or);
KILN_REGISTER_IMPORTER("", "Xor", import_xor);
KILN_REGISTER_IMPORTER("", "BitShift", import_bitshift);
KILN_REGISTER_IMPORTER("", "Not", unary<kNot>);
KILN_REGISTER_IMPORTER("", "Neg", unary<kNeg>);
KILN_REGISTER_IMPORTER("", "Abs", unary<kAbs>);
KILN_REGISTER_IMPORTER("", "Sqrt", unary<kSqrt>);
KILN_REGISTER_IMPORTER("", "Exp", unary<kExp>);
KILN_REGISTER_IMPORTER("", "Log", unary<kLog>);
KILN_REGISTER_IMPORTER("", "Reciprocal", unary<kRecip>);
KILN_REGISTER_IMPORTER("", "Floor", unary<kFloor>);
KILN_REGISTER_IMPORTER("", "Ceil", unary<kCeil>);
KILN_REGISTER_IMPORTER("", "Round", unary<kRound>);
KILN_REGISTER_IMPORTER("", "Sign", unary<kSign>);
KILN_REGISTER_IMPORTER("", "Sin", unary<kSin>);
KILN_REGISTER_IMPORTER("", "Cos", unary<kCos>);
KILN_REGISTER_IMPORTER("", "Tan", unary<kTan>);
KILN_REGISTER_IMPORTER("", "Asin", unary<kAsin>);
KILN_REGISTER_IMPORTER("", "Acos", unary<kAcos>);
KILN_REGISTER_IMPORTER("", "Atan", unary<kAtan>);
KILN_REGISTER_IMPORTER("", "Sinh", unary<kSinh>);
KILN_REGISTER_IMPORTER("", "Cosh", unary<kCosh>);
KILN_REGISTER_IMPORTER("", "Asinh", unary<kAsinh>);
KILN_REGISTER_IMPORTER("", "Acosh", unary<kAcosh>);
KILN_REGISTER_IMPORTER("", "Atanh", unary<kAtanh>);
KILN_REGISTER_IMPORTER("", "Erf", unary<kErf>);
KILN_REGISTER_IMPORTER("", "IsNaN", unary<kIsNan>);
KILN_REGISTER_IMPORTER("", "IsInf", import_isinf);
KILN_REGISTER_IMPORTER("", "Where", import_where);

}  // namespace kiln::onnx
