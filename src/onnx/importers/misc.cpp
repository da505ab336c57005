// Data, constants and indexing: Constant, ConstantOfShape, Range, Shape, Size, Cast, CastLike, Identity,
// Dropout, Gather, GatherElements, GatherND, TopK, Einsum, CumSum, CumProd, Trilu.
#include <algorithm>
#include <cstring>

#include "onnx/import_context.h"

namespace kiln::onnx {
namespace {

using namespace ir_enum;
using Values = std::vector<ir::Value*>;
using Ints = std::vector<int64_t>;

Values import_constant(ImportContext& ctx) {
  const auto& attrs = ctx.node().attribute;
  if (attrs.size() != 1)
    ctx.fail(ParserErrorCode::kINVALID_NODE,
             "Constant needs exactly one of value, value_float(s), value_int(s), got " + std::to_string(attrs.size()) + " attributes");
  std::string a(attrs[0].name);
  HostTensor t;
  if (a == "value") {
    t = ctx.attr_tensor("value");
  } else if (a == "value_float") {
    float f = ctx.attr_f(a, 0);
    t = HostTensor::copy_of(kiln::DataType::kFLOAT, {}, &f);
  } else if (a == "value_floats") {
    auto v = ctx.attr_floats(a);
    t = HostTensor::from_f32(v, {static_cast<int64_t>(v.size())});
  } else if (a == "value_int") {
    t = HostTensor::scalar_i64(ctx.attr_i(a, 0));
  } else if (a == "value_ints") {
    t = HostTensor::from_i64(ctx.attr_ints(a));
  } else if (a == "value_string" || a == "value_strings") {
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DATATYPE, "Constant: string constants are not supported");
  } else if (a == "sparse_value") {
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR, "Constant: sparse_value (a sparse tensor) is not supported");
  } else {
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR, "Constant: unknown attribute '" + a + "'");
  }
  return {ctx.constant(std::move(t))};
}

Values import_constant_of_shape(ImportContext& ctx) {
  ir::Attrs at;
  if (ctx.has_attr("value")) {
    HostTensor v = ctx.attr_tensor("value");
    if (v.numel() != 1)
      ctx.fail(ParserErrorCode::kINVALID_NODE, "ConstantOfShape: 'value' must hold one element, got shape " + dims_str(v.shape()));
    at.set("value", v.reshaped({1}));
  } else {
    at.set("value", HostTensor::from_f32({0.0f}, {1}));
  }
  return {ctx.add1("ConstantOfShape", {ctx.required_input(0)}, std::move(at))};
}

Values import_range(ImportContext& ctx) {
  return {ctx.add1("Range", {ctx.required_input(0), ctx.required_input(1), ctx.required_input(2)})};
}

// Shape, with opset 15's start/end as a DynamicSlice of the full shape.
Values import_shape(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  int64_t r = ImportContext::rank(x);
  int64_t start = ctx.attr_i("start", 0), end = ctx.attr_i("end", r);
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = std::clamp<int64_t>(start, 0, r);
  end = std::clamp<int64_t>(end, start, r);
  Ints dims(x->shape.begin() + start, x->shape.begin() + end);
  if (dims_known(dims)) return {ctx.const_i64(dims)};  // known now, even where other dims are dynamic
  ir::Value* s = ctx.shape_of(x);
  if (start != 0 || end != r)
    s = ctx.add1("DynamicSlice", {s, ctx.const_i64({start}), ctx.const_i64({end}), ctx.const_i64({0})});
  ctx.set_sym(s, ctx.sym_dims(x, start, end));
  return {s};
}

// Size: the element count as an int64 scalar.
Values import_size(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  if (dims_known(x->shape)) return {ctx.const_i64_scalar(volume(x->shape))};
  ir::Attrs at;
  at.set("op", int64_t{kRProd});
  at.set("axes", Ints{0});
  at.set("keep_dims", int64_t{0});
  return {ctx.add1("Reduce", {ctx.shape_of(x)}, std::move(at))};
}

// Cast / CastLike with their float8 attributes: `saturate` (opset 19) and E8M0's `round_mode` (opset 24).
ir::Value* cast_node(ImportContext& ctx, ir::Value* x, kiln::DataType to) {
  ir::Attrs at;
  at.set("to", static_cast<int64_t>(to));
  at.set("saturate", ctx.attr_i("saturate", 1) != 0 ? int64_t{1} : int64_t{0});
  const std::string round = ctx.attr_s("round_mode", "up");
  if (round != "up" && round != "down" && round != "nearest")
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR, "round_mode must be \"up\", \"down\" or \"nearest\", got \"" + round + "\"");
  at.set("round_mode", int64_t{round == "up" ? 0 : round == "down" ? 1 : 2});
  return ctx.add1("Cast", {x}, std::move(at));
}

Values import_cast(ImportContext& ctx) {
  int64_t to = ctx.req_attr_i("to");
  auto dt = to_kiln_dtype(static_cast<int32_t>(to));
  if (!dt)
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DATATYPE,
             "Cast to " + std::string(data_type_name(static_cast<int32_t>(to))) + " (" + std::to_string(to) +
                 ") is not supported");
  ir::Value* x = ctx.required_input(0);
  ir::Value* y = cast_node(ctx, x, *dt);
  if (*dt == kiln::DataType::kINT64 || *dt == kiln::DataType::kINT32)
    if (auto sym = ctx.sym_of(x); sym && !dtype_is_float(x->dtype)) ctx.set_sym(y, *sym);
  return {y};
}

Values import_cast_like(ImportContext& ctx) {
  return {cast_node(ctx, ctx.required_input(0), ctx.required_input(1)->dtype)};
}

Values import_identity(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  ir::Value* y = ctx.identity(x);
  if (auto sym = ctx.sym_of(x)) ctx.set_sym(y, *sym);
  return {y};
}

// Dropout at inference is the identity and its mask all true. Training mode is not supported.
Values import_dropout(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  if (ir::Value* training = ctx.input(2)) {
    const HostTensor* t = ctx.value_of(training);
    // Training mode with a constant ratio of 0 drops nothing (exporters write it for p=0.0 dropouts).
    const HostTensor* ratio = ctx.input(1) ? ctx.value_of(ctx.input(1)) : nullptr;
    bool zero_ratio = ratio && ratio->numel() == 1 && ratio->get_f64(0) == 0.0;
    if (!t || t->numel() != 1 || (t->get_i64(0) != 0 && !zero_ratio))
      ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_INPUT,
               "Dropout: training_mode must be a constant false for inference (or the ratio a constant 0)");
  }
  Values outs{ctx.identity(x)};
  if (ctx.output_used(1)) {
    if (ctx.opset() < 10)  // the mask was a float tensor before opset 10
      ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE, "Dropout: the mask output needs opset 10 or newer");
    HostTensor one(kiln::DataType::kBOOL, {1});
    one.mutable_data<uint8_t>()[0] = 1;
    ir::Attrs at;
    at.set("value", std::move(one));
    outs.push_back(ctx.add1("ConstantOfShape", {ctx.shape_of(x)}, std::move(at)));
  }
  return outs;
}

Values import_gather(ImportContext& ctx) {
  ir::Value* data = ctx.required_input(0);
  ir::Value* indices = ctx.required_input(1);
  ir::Attrs at;
  at.set("axis", ctx.axis(ctx.attr_i("axis", 0), ImportContext::rank(data)));
  at.set("mode", int64_t{0});
  at.set("num_elementwise_dims", int64_t{0});
  ir::Value* y = ctx.add1("Gather", {data, indices}, std::move(at));
  // Picking elements of a symbolic shape vector (x.size(i)) keeps them symbolic.
  auto sym = ImportContext::rank(data) == 1 ? ctx.sym_of(data) : std::nullopt;
  auto idx = sym && indices->shape.size() <= 1 ? ctx.ints_of(indices, "the indices") : std::nullopt;
  if (sym && idx) {
    ImportContext::SymShape picked;
    int64_t n = static_cast<int64_t>(sym->size());
    for (int64_t i : *idx) {
      if (i < 0) i += n;
      if (i < 0 || i >= n) return {y};
      picked.push_back((*sym)[i]);
    }
    ctx.set_sym(y, picked);
  }
  return {y};
}

Values import_gather_elements(ImportContext& ctx) {
  ir::Value* data = ctx.required_input(0);
  ir::Attrs at;
  at.set("axis", ctx.axis(ctx.attr_i("axis", 0), ImportContext::rank(data)));
  at.set("mode", int64_t{1});
  at.set("num_elementwise_dims", int64_t{0});
  return {ctx.add1("Gather", {data, ctx.required_input(1)}, std::move(at))};
}

Values import_gather_nd(ImportContext& ctx) {
  ir::Attrs at;
  at.set("axis", int64_t{0});
  at.set("mode", int64_t{2});
  at.set("num_elementwise_dims", ctx.attr_i("batch_dims", 0));
  return {ctx.add1("Gather", {ctx.required_input(0), ctx.required_input(1)}, std::move(at))};
}

// TopK: k is an attribute before opset 10 and an input from 10; largest/sorted from opset 11.
Values import_topk(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  ir::Attrs at;
  at.set("op", int64_t{ctx.attr_i("largest", 1) != 0 ? 0 : 1});
  at.set("axis", ctx.axis(ctx.attr_i("axis", -1), ImportContext::rank(x)));
  at.set("sorted", ctx.attr_i("sorted", 1));
  ir::Value* k_in = nullptr;
  if (ctx.opset() < 10) {
    at.set("k", ctx.req_attr_i("k"));
  } else {
    ir::Value* k = ctx.required_input(1);
    if (auto kv = ctx.ints_of(k, "k")) {
      if (kv->size() != 1) ctx.fail(ParserErrorCode::kINVALID_NODE, "TopK: k must hold one value, got " + dims_str(*kv));
      at.set("k", (*kv)[0]);
    } else {
      k_in = k;
    }
  }
  ir::Node* n = ctx.add("TopK", {x, k_in}, std::move(at), 2);
  return n->outputs;
}

Values import_einsum(ImportContext& ctx) {
  Values ins;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) ins.push_back(ctx.required_input(i));
  ir::Attrs at;
  std::string eq;
  for (char ch : ctx.attr_s("equation", ""))
    if (ch != ' ' && ch != '\t') eq += ch;  // ONNX allows spaces around terms
  if (eq.empty()) ctx.fail(ParserErrorCode::kINVALID_NODE, "Einsum needs an equation");
  at.set("equation", eq);
  return {ctx.add1("Einsum", ins, std::move(at))};
}

Values import_cumsum(ImportContext& ctx) {
  ir::Attrs at;
  at.set("exclusive", ctx.attr_i("exclusive", 0));
  at.set("reverse", ctx.attr_i("reverse", 0));
  return {ctx.add1("CumSum", {ctx.required_input(0), ctx.required_input(1)}, std::move(at))};
}

// CumProd: CumSum with running products.
Values import_cumprod(ImportContext& ctx) {
  ir::Attrs at;
  at.set("exclusive", ctx.attr_i("exclusive", 0));
  at.set("reverse", ctx.attr_i("reverse", 0));
  at.set("product", int64_t{1});
  return {ctx.add1("CumSum", {ctx.required_input(0), ctx.required_input(1)}, std::move(at))};
}

// Trilu: keep x where (col - row) >= k (upper) or <= k (lower), zero elsewhere. Row/column indices come
// from Range over the last two dims, so dynamic shapes work too.
Values import_trilu(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  int64_t r = ImportContext::rank(x);
  if (r < 2) ctx.fail(ParserErrorCode::kINVALID_NODE, "Trilu needs a rank >= 2 input, got " + dims_str(x->shape));
  bool upper = ctx.attr_i("upper", 1) != 0;
  ir::Value* k = ctx.input(1);
  if (k) {
    if (k->dtype != kiln::DataType::kINT64) k = ctx.cast(k, kiln::DataType::kINT64);
    if (!k->shape.empty()) k = ctx.reshape(k, {}, false);
  } else {
    k = ctx.const_i64_scalar(0);
  }
  auto dim_scalar = [&](int64_t d) -> ir::Value* {
    if (x->shape[d] >= 0) return ctx.const_i64_scalar(x->shape[d]);
    ir::Attrs at;
    at.set("axis", int64_t{0});
    at.set("mode", int64_t{0});
    return ctx.add1("Gather", {ctx.shape_of(x), ctx.const_i64_scalar(d)}, std::move(at));
  };
  ir::Value* zero = ctx.const_i64_scalar(0);
  ir::Value* one = ctx.const_i64_scalar(1);
  ir::Value* rows = ctx.add1("Range", {zero, dim_scalar(r - 2), one});  // [H]
  ir::Value* cols = ctx.add1("Range", {zero, dim_scalar(r - 1), one});  // [W]
  rows = ctx.unsqueeze(rows, {1});                                     // [H, 1]
  ir::Value* diff = ctx.elementwise(cols, rows, kSub);                 // [H, W] = col - row
  ir::Value* keep = ctx.elementwise(diff, k, upper ? kGreaterEqual : kLessEqual);
  return {ctx.add1("Select", {keep, x, ctx.const_scalar(x->dtype, 0.0)})};
}

// EyeLike: ones on the k-th diagonal of a 2-D tensor shaped like the input (static shapes: a constant).
Values import_eye_like(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  if (x->shape.size() != 2 || !dims_known(x->shape))
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DYNAMIC, "EyeLike needs a 2-D input with static dims, got " + dims_str(x->shape));
  kiln::DataType dt = x->dtype;
  if (ctx.has_attr("dtype")) {
    auto d = to_kiln_dtype(static_cast<int32_t>(ctx.attr_i("dtype", 1)));
    if (!d) ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DATATYPE, "EyeLike: unsupported dtype " + std::to_string(ctx.attr_i("dtype", 1)));
    dt = *d;
  }
  int64_t k = ctx.attr_i("k", 0), rows = x->shape[0], cols = x->shape[1];
  HostTensor f(kiln::DataType::kFLOAT, {rows, cols});
  for (int64_t i = 0; i < rows; ++i)
    if (i + k >= 0 && i + k < cols) f.mutable_data<float>()[i * cols + i + k] = 1.0f;
  ir::Value* eye = ctx.constant(std::move(f));
  return {dt == kiln::DataType::kFLOAT ? eye : ctx.cast(eye, dt)};
}

}  // namespace

KILN_REGISTER_IMPORTER("", "EyeLike", import_eye_like);
KILN_REGISTER_IMPORTER("", "Constant", import_constant);
KILN_REGISTER_IMPORTER("", "ConstantOfShape", import_constant_of_shape);
KILN_REGISTER_IMPORTER("", "Range", import_range);
KILN_REGISTER_IMPORTER("", "Shape", import_shape);
KILN_REGISTER_IMPORTER("", "Size", import_size);
KILN_REGISTER_IMPORTER("", "Cast", import_cast);
KILN_REGISTER_IMPORTER("", "CastLike", import_cast_like);
KILN_REGISTER_IMPORTER("", "Identity", import_identity);
KILN_REGISTER_IMPORTER("", "Dropout", import_dropout);
KILN_REGISTER_IMPORTER("", "Gather", import_gather);
KILN_REGISTER_IMPORTER("", "GatherElements", import_gather_elements);
KILN_REGISTER_IMPORTER("", "GatherND", import_gather_nd);
KILN_REGISTER_IMPORTER("", "TopK", import_topk);
KILN_REGISTER_IMPORTER("", "Einsum", import_einsum);
KILN_REGISTER_IMPORTER("", "CumSum", import_cumsum);
KILN_REGISTER_IMPORTER("", "CumProd", import_cumprod);
KILN_REGISTER_IMPORTER("", "Trilu", import_trilu);

}  // namespace kiln::onnx
