// The quantization ops: QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear onto their IR ops;
// MatMulInteger and ConvInteger onto theirs; QLinearMatMul and QLinearConv as an integer product
// (MatMulInteger / ConvInteger, plus the int32 bias) followed by Requantize with the multiplier
// a_scale * b_scale / y_scale, computed in the scales' own float type as ONNX's reference does.
#include "onnx/import_context.h"

namespace kiln::onnx {
namespace {

using namespace ir_enum;
using Values = std::vector<ir::Value*>;
using Ints = std::vector<int64_t>;

// The IR output_dtype of a node's ONNX `output_dtype` attribute; -1 when absent (or 0, ONNX's "unset").
int64_t output_dtype_attr(ImportContext& ctx) {
  const int64_t t = ctx.attr_i("output_dtype", 0);
  if (t == 0) return -1;
  auto dt = to_kiln_dtype(static_cast<int32_t>(t));
  if (!dt)
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DATATYPE, ctx.op_type() + ": output_dtype " +
                                                              std::string(data_type_name(static_cast<int32_t>(t))) +
                                                              " is not supported");
  return static_cast<int64_t>(*dt);
}

ir::Attrs axis_attrs(ImportContext& ctx) {
  ir::Attrs at;
  at.set("axis", ctx.attr_i("axis", 1));
  at.set("block_size", ctx.attr_i("block_size", 0));
  return at;
}

Values import_quantize_linear(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  ir::Value* scale = ctx.required_input(1);
  ir::Attrs at = axis_attrs(ctx);
  at.set("saturate", ctx.attr_i("saturate", 1) != 0 ? int64_t{1} : int64_t{0});
  at.set("output_dtype", output_dtype_attr(ctx));
  // `precision` (opset 25): x and the scale are converted to that type before dividing.
  if (const int64_t p = ctx.attr_i("precision", 0); p != 0) {
    auto dt = to_kiln_dtype(static_cast<int32_t>(p));
    if (!dt || !dtype_is_float(*dt))
      ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR, "QuantizeLinear: precision " +
                                                             std::string(data_type_name(static_cast<int32_t>(p))) +
                                                             " is not a supported float type");
    if (x->dtype != *dt) x = ctx.cast(x, *dt);
    if (scale->dtype != *dt) scale = ctx.cast(scale, *dt);
  }
  return {ctx.add1("QuantizeLinear", {x, scale, ctx.input(2)}, std::move(at))};
}

Values import_dequantize_linear(ImportContext& ctx) {
  ir::Attrs at = axis_attrs(ctx);
  at.set("output_dtype", output_dtype_attr(ctx));
  return {ctx.add1("DequantizeLinear", {ctx.required_input(0), ctx.required_input(1), ctx.input(2)}, std::move(at))};
}

Values import_dynamic_quantize_linear(ImportContext& ctx) {
  ir::Node* n = ctx.add("DynamicQuantizeLinear", {ctx.required_input(0)}, {}, 3);
  return {n->outputs[0], n->outputs[1], n->outputs[2]};
}

Values import_matmul_integer(ImportContext& ctx) {
  return {ctx.add1("MatMulInteger", {ctx.required_input(0), ctx.required_input(1), ctx.input(2), ctx.input(3)})};
}

// Conv's kernel_shape/strides/dilations/pads/auto_pad/group as Convolution's IR attributes.
ir::Attrs conv_window(ImportContext& ctx, ir::Value* x, ir::Value* w) {
  if (x->shape.size() < 3 || x->shape.size() > 5 || w->shape.size() != x->shape.size())
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_SHAPE, ctx.op_type() + ": needs x [N, C, spatial...] with 1 to 3 spatial dims "
                                                           "and weights of the same rank, got " + dims_str(x->shape) +
                                                           " and " + dims_str(w->shape));
  const size_t nsp = x->shape.size() - 2;
  Ints wk(w->shape.begin() + 2, w->shape.end());
  Ints kernel = ctx.attr_ints("kernel_shape", dims_known(wk) ? wk : Ints{});
  if (kernel.size() != nsp)
    ctx.fail(ParserErrorCode::kINVALID_NODE, ctx.op_type() + ": kernel_shape " + dims_str(kernel) + " needs " +
                                                 std::to_string(nsp) + " values (one per spatial dim)");
  auto per_dim = [&](const char* name, int64_t def) {
    Ints v = ctx.attr_ints(name);
    if (v.empty()) return Ints(nsp, def);
    if (v.size() != nsp)
      ctx.fail(ParserErrorCode::kINVALID_NODE, ctx.op_type() + ": '" + name + "' " + dims_str(v) + " needs " +
                                                   std::to_string(nsp) + " values");
    return v;
  };
  Ints pads = ctx.attr_ints("pads");
  if (pads.empty()) pads.assign(2 * nsp, 0);
  if (pads.size() != 2 * nsp)
    ctx.fail(ParserErrorCode::kINVALID_NODE, ctx.op_type() + ": pads " + dims_str(pads) + " needs " +
                                                 std::to_string(2 * nsp) + " values (begins, then ends)");
  const std::string auto_pad = ctx.attr_s("auto_pad", "NOTSET");
  int64_t mode = 0;  // EXPLICIT_ROUND_DOWN
  if (auto_pad == "SAME_UPPER") mode = 2;
  else if (auto_pad == "SAME_LOWER") mode = 3;
  else if (auto_pad != "NOTSET" && auto_pad != "VALID" && !auto_pad.empty())
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR, ctx.op_type() + ": unknown auto_pad '" + auto_pad + "'");
  if (auto_pad != "NOTSET" && !auto_pad.empty()) pads.assign(2 * nsp, 0);
  ir::Attrs at;
  at.set("kernel", kernel);
  at.set("stride", per_dim("strides", 1));
  at.set("dilation", per_dim("dilations", 1));
  at.set("pre_padding", Ints(pads.begin(), pads.begin() + static_cast<int64_t>(nsp)));
  at.set("post_padding", Ints(pads.begin() + static_cast<int64_t>(nsp), pads.end()));
  at.set("padding_mode", mode);
  at.set("groups", ctx.attr_i("group", 1));
  if (w->shape[0] >= 0) at.set("num_output_maps", w->shape[0]);
  return at;
}

Values import_conv_integer(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  ir::Value* w = ctx.required_input(1);
  return {ctx.add1("ConvInteger", {x, w, ctx.input(2), ctx.input(3)}, conv_window(ctx, x, w))};
}

// a op b in float32, rounded back to the operands' type when that is float16/bfloat16: numpy's float16
// arithmetic (which the reference uses) computes in float32 and rounds each result.
ir::Value* scale_op(ImportContext& ctx, ir::Value* a, ir::Value* b, int64_t op) {
  const kiln::DataType t = a->dtype;
  if (t == kiln::DataType::kFLOAT || t == kiln::DataType::kDOUBLE) return ctx.elementwise(a, b, op);
  ir::Value* r = ctx.elementwise(ctx.cast(a, kiln::DataType::kFLOAT), ctx.cast(b, kiln::DataType::kFLOAT), op);
  return ctx.cast(r, t);
}

void check_scale(ImportContext& ctx, ir::Value* s, const char* what, kiln::DataType want) {
  if (s->dtype != want)
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DATATYPE, ctx.op_type() + ": " + what + " is " + dtype_name(s->dtype) +
                                                              ", expected " + dtype_name(want) + " like a_scale/x_scale");
}

bool is_int8(kiln::DataType t) { return t == kiln::DataType::kINT8 || t == kiln::DataType::kUINT8; }

// QLinearMatMul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp): scales and zero points of a and y are per
// tensor or per row of a (1-D, M elements), those of b per tensor or per column (N elements).
Values import_qlinear_matmul(ImportContext& ctx) {
  ir::Value* a = ctx.required_input(0);
  ir::Value* a_scale = ctx.required_input(1);
  ir::Value* b = ctx.required_input(3);
  ir::Value* b_scale = ctx.required_input(4);
  ir::Value* y_scale = ctx.required_input(6);
  ir::Value* y_zp = ctx.required_input(7);
  if (!is_int8(a->dtype) || !is_int8(b->dtype) || !is_int8(y_zp->dtype))
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DATATYPE,
             "QLinearMatMul: only int8/uint8 operands are supported, got a " + std::string(dtype_name(a->dtype)) +
                 ", b " + dtype_name(b->dtype) + ", y " + dtype_name(y_zp->dtype));
  check_scale(ctx, b_scale, "b_scale", a_scale->dtype);
  check_scale(ctx, y_scale, "y_scale", a_scale->dtype);
  ir::Value* acc = ctx.add1("MatMulInteger", {a, b, ctx.input(2), ctx.input(5)});
  // Per-row values become [M, 1] columns so that they broadcast over the output's rows.
  auto per_row = [&](ir::Value* v) {
    const int64_t n = volume(v->shape);
    return n == 1 || v->shape.empty() ? v : ctx.reshape(v, {-1, 1});
  };
  ir::Value* mult = scale_op(ctx, scale_op(ctx, per_row(a_scale), b_scale, kProd), per_row(y_scale), kDiv);
  return {ctx.add1("Requantize", {acc, mult, per_row(y_zp)})};
}

// QLinearConv(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B): w's scale and zero point are per tensor
// or per output channel; B (int32) is added to the integer accumulator.
Values import_qlinear_conv(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  ir::Value* x_scale = ctx.required_input(1);
  ir::Value* w = ctx.required_input(3);
  ir::Value* w_scale = ctx.required_input(4);
  ir::Value* y_scale = ctx.required_input(6);
  ir::Value* y_zp = ctx.required_input(7);
  ir::Value* bias = ctx.input(8);
  if (!is_int8(y_zp->dtype))
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DATATYPE,
             "QLinearConv: y_zero_point must be int8 or uint8, got " + std::string(dtype_name(y_zp->dtype)));
  check_scale(ctx, w_scale, "w_scale", x_scale->dtype);
  check_scale(ctx, y_scale, "y_scale", x_scale->dtype);
  ir::Value* acc = ctx.add1("ConvInteger", {x, w, ctx.input(2), ctx.input(5)}, conv_window(ctx, x, w));
  // Per-channel values as [1, K, 1, ...] against the [N, K, spatial...] accumulator.
  auto per_channel = [&](ir::Value* v) {
    if (volume(v->shape) == 1 || v->shape.empty()) return v;
    Ints dims(x->shape.size(), 1);
    dims[1] = -1;
    return ctx.reshape(v, dims);
  };
  if (bias) {
    if (bias->dtype != kiln::DataType::kINT32)
      ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DATATYPE, "QLinearConv: B must be int32, got " + std::string(dtype_name(bias->dtype)));
    acc = ctx.elementwise(acc, per_channel(bias), kSum);
  }
  ir::Value* mult = scale_op(ctx, scale_op(ctx, x_scale, per_channel(w_scale), kProd), y_scale, kDiv);
  return {ctx.add1("Requantize", {acc, mult, y_zp})};
}

}  // namespace

KILN_REGISTER_IMPORTER("", "QuantizeLinear", import_quantize_linear);
KILN_REGISTER_IMPORTER("", "DequantizeLinear", import_dequantize_linear);
KILN_REGISTER_IMPORTER("", "DynamicQuantizeLinear", import_dynamic_quantize_linear);
KILN_REGISTER_IMPORTER("", "MatMulInteger", import_matmul_integer);
KILN_REGISTER_IMPORTER("", "ConvInteger", import_conv_integer);
KILN_REGISTER_IMPORTER("", "QLinearMatMul", import_qlinear_matmul);
KILN_REGISTER_IMPORTER("", "QLinearConv", import_qlinear_conv);

}  // namespace kiln::onnx
