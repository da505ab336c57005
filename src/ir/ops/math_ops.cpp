// Shape/type inference for the pointwise ops: Identity, Cast, Activation, ElementWise, Unary, Select, Scale.
// Contract: ir/OPS.md.
#include <climits>
#include <initializer_list>
#include <string>

#include "ir/op_registry.h"

namespace kiln::ir {
namespace {

constexpr std::initializer_list<DataType> kFloatTypes = {DataType::kFLOAT, DataType::kHALF, DataType::kBF16,
                                                         DataType::kDOUBLE};

bool one_of(DataType t, std::initializer_list<DataType> l) {
  for (DataType x : l)
    if (x == t) return true;
  return false;
}

std::string names(std::initializer_list<DataType> l) {
  std::string s;
  size_t i = 0;
  for (DataType t : l) {
    if (i) s += (i + 1 == l.size()) ? " or " : ", ";
    s += dtype_name(t);
    ++i;
  }
  return s;
}

void check_dtype(const InferContext& ctx, size_t i, std::initializer_list<DataType> allowed, const char* what) {
  DataType t = ctx.in(i).dtype;
  if (!one_of(t, allowed))
    ctx.fail(std::string(what) + " must be " + names(allowed) + ", got " + dtype_name(t));
}

int64_t required_i(const InferContext& ctx, const char* name) {
  if (!ctx.attrs().has(name)) ctx.fail(std::string("attribute '") + name + "' is required");
  return ctx.attrs().i(name, 0);
}

// ---------------------------------------------------------------------------------------------------------

void infer_identity(InferContext& ctx) { ctx.set_out(0, ctx.in(0).dtype, ctx.in(0).shape); }

// Cast converts between any two dtypes (the CPU kernel has every pair).
void infer_cast(InferContext& ctx) {
  int64_t to = required_i(ctx, "to");
  if (to < INT32_MIN || to > INT32_MAX || !dtype_is_valid(static_cast<int32_t>(to)))
    ctx.fail("attribute 'to' must be a DataType value, got " + std::to_string(to));
  const int64_t round_mode = ctx.attrs().i("round_mode", 0);
  if (round_mode < 0 || round_mode > 2)
    ctx.fail("attribute 'round_mode' must be 0 (up), 1 (down) or 2 (nearest), got " + std::to_string(round_mode));
  ctx.set_out(0, static_cast<DataType>(to), ctx.in(0).shape);
}

bool valid_activation(int64_t t) { return (t >= 0 && t <= 13) || (t >= 64 && t <= 68); }

void infer_activation(InferContext& ctx) {
  int64_t type = required_i(ctx, "type");
  if (!valid_activation(type))
    ctx.fail("attribute 'type' must be an ActivationType (0-13, or Kiln's 64-68), got " + std::to_string(type));
  DataType t = ctx.in(0).dtype;
  const bool int_ok = (type == 0 || type == 8);  // RELU and CLIP also take integers
  if (!one_of(t, kFloatTypes) &&
      !(int_ok && one_of(t, {DataType::kINT8, DataType::kUINT8, DataType::kINT32, DataType::kINT64})))
    ctx.fail(std::string("input 0 must be ") + names(kFloatTypes) +
             (int_ok ? " (or int8, uint8, int32, int64 for RELU/CLIP)" : "") + ", got " + dtype_name(t));
  ctx.set_out(0, t, ctx.in(0).shape);
}

enum EwOp : int64_t {
  kSum = 0, kProd = 1, kMax = 2, kMin = 3, kSub = 4, kDiv = 5, kPow = 6, kFloorDiv = 7, kAnd = 8, kOr = 9,
  kXor = 10, kEqual = 11, kGreater = 12, kLess = 13, kMod = 64, kGreaterEqual = 65, kLessEqual = 66,
  kShiftLeft = 67, kShiftRight = 68
};

void infer_elementwise(InferContext& ctx) {
  int64_t op = required_i(ctx, "op");
  const bool logic = op == kAnd || op == kOr || op == kXor;
  const bool compare = op == kEqual || op == kGreater || op == kLess || op == kGreaterEqual || op == kLessEqual;
  const bool arith = (op >= kSum && op <= kFloorDiv) || op == kMod;
  const bool shift = op == kShiftLeft || op == kShiftRight;
  if (!logic && !compare && !arith && !shift)
    ctx.fail("attribute 'op' must be an ElementWiseOperation (0-13, or Kiln's 64-68), got " + std::to_string(op));
  const TensorInfo& a = ctx.in(0);
  const TensorInfo& b = ctx.in(1);
  if (a.dtype != b.dtype)
    ctx.fail(std::string("inputs must share a dtype, got ") + dtype_name(a.dtype) + " and " + dtype_name(b.dtype));
  if (logic) {
    check_dtype(ctx, 0, {DataType::kBOOL}, "inputs of AND/OR/XOR");
  } else if (shift) {
    check_dtype(ctx, 0,
                {DataType::kUINT8, DataType::kINT8, DataType::kINT16, DataType::kUINT16, DataType::kINT32,
                 DataType::kUINT32, DataType::kINT64, DataType::kUINT64},
                "inputs of BITSHIFT_LEFT/BITSHIFT_RIGHT");
  } else if (op == kEqual) {
    check_dtype(ctx, 0,
                {DataType::kFLOAT, DataType::kHALF, DataType::kBF16, DataType::kDOUBLE, DataType::kINT8,
                 DataType::kUINT8, DataType::kINT16, DataType::kUINT16, DataType::kINT32, DataType::kUINT32,
                 DataType::kINT64, DataType::kUINT64, DataType::kBOOL},
                "inputs");
  } else {
    check_dtype(ctx, 0,
                {DataType::kFLOAT, DataType::kHALF, DataType::kBF16, DataType::kDOUBLE, DataType::kINT8,
                 DataType::kUINT8, DataType::kINT16, DataType::kUINT16, DataType::kINT32, DataType::kUINT32,
                 DataType::kINT64, DataType::kUINT64},
                "inputs");
  }
  Dims out = broadcast_shapes(ctx, a.shape, b.shape);
  ctx.set_out(0, (logic || compare) ? DataType::kBOOL : a.dtype, std::move(out));
}

void infer_unary(InferContext& ctx) {
  int64_t op = required_i(ctx, "op");
  if (op < 0 || op > 24) ctx.fail("attribute 'op' must be a UnaryOperation (0-24), got " + std::to_string(op));
  DataType t = ctx.in(0).dtype;
  DataType out = t;
  if (op == 20) {  // NOT
    check_dtype(ctx, 0, {DataType::kBOOL}, "input 0 of NOT");
  } else if (op == 4 || op == 5 || op == 21) {  // ABS, NEG, SIGN
    check_dtype(ctx, 0,
                {DataType::kFLOAT, DataType::kHALF, DataType::kBF16, DataType::kDOUBLE, DataType::kINT8,
                 DataType::kINT16, DataType::kINT32, DataType::kINT64},
                "input 0");
  } else {
    check_dtype(ctx, 0, kFloatTypes, "input 0");
    if (op == 23 || op == 24) out = DataType::kBOOL;  // ISINF, ISNAN
  }
  ctx.set_out(0, out, ctx.in(0).shape);
}

void infer_select(InferContext& ctx) {
  check_dtype(ctx, 0, {DataType::kBOOL}, "input 0 (the condition)");
  const TensorInfo& a = ctx.in(1);
  const TensorInfo& b = ctx.in(2);
  if (a.dtype != b.dtype)
    ctx.fail(std::string("inputs 1 and 2 must share a dtype, got ") + dtype_name(a.dtype) + " and " +
             dtype_name(b.dtype));
  Dims s = broadcast_shapes(ctx, ctx.in(0).shape, a.shape);
  s = broadcast_shapes(ctx, s, b.shape);
  ctx.set_out(0, a.dtype, std::move(s));
}

// Scale: x, optional shift, scale, power. Each coefficient tensor holds 1 (UNIFORM), C (CHANNEL: the size of
// dim channel_axis) or prod(dims[channel_axis:]) (ELEMENTWISE) values.
void infer_scale(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  check_dtype(ctx, 0, kFloatTypes, "input 0");
  int64_t mode = ctx.attrs().i("mode", 0);
  if (mode < 0 || mode > 2)
    ctx.fail("attribute 'mode' must be UNIFORM 0, CHANNEL 1 or ELEMENTWISE 2, got " + std::to_string(mode));
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  int64_t expected = 1;
  if (mode != 0) {
    if (rank == 0) ctx.fail("CHANNEL/ELEMENTWISE modes need an input of rank >= 1, got a scalar");
    int64_t axis = normalize_axis(ctx, ctx.attrs().i("channel_axis", 1), rank);
    Dims tail(x.shape.begin() + axis, mode == 1 ? x.shape.begin() + axis + 1 : x.shape.end());
    expected = volume(tail);  // -1 when unknown
  }
  static const char* kNames[] = {"", "shift", "scale", "power"};
  for (size_t i = 1; i < 4; ++i) {
    if (!ctx.has_input(i)) continue;
    const TensorInfo& c = ctx.in(i);
    if (!one_of(c.dtype, kFloatTypes))
      ctx.fail(std::string("input ") + std::to_string(i) + " (" + kNames[i] + ") must be a float tensor, got " +
               dtype_name(c.dtype));
    int64_t n = volume(c.shape);
    if (n >= 0 && expected >= 0 && n != expected)
      ctx.fail(std::string("input ") + std::to_string(i) + " (" + kNames[i] + ") must hold " +
               std::to_string(expected) + " values for mode " +
               (mode == 0 ? "UNIFORM" : mode == 1 ? "CHANNEL" : "ELEMENTWISE") + " on input shape " +
               dims_str(x.shape) + ", got shape " + dims_str(c.shape));
  }
  ctx.set_out(0, x.dtype, x.shape);
}

}  // namespace

KILN_REGISTER_OP(OpDef{"Identity", 1, 1, 1, &infer_identity});
KILN_REGISTER_OP(OpDef{"Cast", 1, 1, 1, &infer_cast});
KILN_REGISTER_OP(OpDef{"Activation", 1, 1, 1, &infer_activation});
KILN_REGISTER_OP(OpDef{"ElementWise", 2, 2, 1, &infer_elementwise});
KILN_REGISTER_OP(OpDef{"Unary", 1, 1, 1, &infer_unary});
KILN_REGISTER_OP(OpDef{"Select", 3, 3, 1, &infer_select});
KILN_REGISTER_OP(OpDef{"Scale", 1, 4, 1, &infer_scale});

}  // namespace kiln::ir
