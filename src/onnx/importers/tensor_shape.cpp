// Shape-changing ONNX ops: Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Concat, Split, Slice, Expand,
// Tile, Pad, DepthToSpace, SpaceToDepth. Attributes that later opsets turned into inputs (Slice starts/ends
// at 10, Pad pads at 11, Split split and Squeeze/Unsqueeze axes at 13) are read from either place.
#include <algorithm>

#include "onnx/import_context.h"

namespace kiln::onnx {
namespace {

using Values = std::vector<ir::Value*>;
using Ints = std::vector<int64_t>;

// A shape computed from x's own dims (x.view(x.size(0), x.size(1), h, -1)) as static reshape dims: each
// element a constant, or 0 (copy) where it is x's dim at that same position.
std::optional<Ints> placeholder_dims(ImportContext& ctx, ir::Value* x, ir::Value* shape, bool allowzero) {
  auto sym = ctx.sym_of(shape);
  if (!sym) return std::nullopt;
  Ints dims;
  bool placeholder = false, literal_zero = false;
  for (size_t i = 0; i < sym->size(); ++i) {
    const auto& e = (*sym)[i];
    if (!e.src) {
      dims.push_back(e.value);
      literal_zero = literal_zero || e.value == 0;
    } else if (e.src == x && e.value == static_cast<int64_t>(i)) {
      dims.push_back(0);
      placeholder = true;
    } else {
      return std::nullopt;
    }
  }
  if (allowzero && literal_zero && placeholder) return std::nullopt;
  if (allowzero && !placeholder) return std::nullopt;  // handled as constant dims by the caller
  return dims;
}

Values import_reshape(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  bool allowzero = ctx.attr_i("allowzero", 0) != 0;
  ir::Attrs at;
  at.set("zero_is_placeholder", int64_t{!allowzero});
  if (ctx.opset() < 5 || !ctx.has_input(1)) {
    at.set("has_reshape", int64_t{1});
    at.set("reshape_dims", ctx.req_attr_ints("shape"));
    return {ctx.add1("Shuffle", {x}, std::move(at))};
  }
  ir::Value* shape = ctx.required_input(1);
  if (auto dims = ctx.ints_of(shape, "the shape")) {
    at.set("has_reshape", int64_t{1});
    at.set("reshape_dims", *dims);
    return {ctx.add1("Shuffle", {x}, std::move(at))};
  }
  if (auto dims = placeholder_dims(ctx, x, shape, allowzero)) {
    at.set("has_reshape", int64_t{1});
    at.set("reshape_dims", *dims);
    at.set("zero_is_placeholder", int64_t{1});
    return {ctx.add1("Shuffle", {x}, std::move(at))};
  }
  if (shape->dtype != kiln::DataType::kINT64 && shape->dtype != kiln::DataType::kINT32) shape = ctx.cast(shape, kiln::DataType::kINT64);
  return {ctx.add1("Shuffle", {x, shape}, std::move(at))};
}

Values import_flatten(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  int64_t r = ImportContext::rank(x);
  int64_t axis = ctx.attr_i("axis", 1);
  if (axis < 0) axis += r;
  if (axis < 0 || axis > r)
    ctx.fail(ParserErrorCode::kINVALID_NODE, "Flatten: axis " + std::to_string(ctx.attr_i("axis", 1)) +
                                                 " is out of range for a rank-" + std::to_string(r) + " input");
  return {ctx.flatten2d(x, axis)};
}

Values import_transpose(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  int64_t r = ImportContext::rank(x);
  Ints perm = ctx.attr_ints("perm");
  if (perm.empty())
    for (int64_t i = r - 1; i >= 0; --i) perm.push_back(i);
  for (auto& p : perm)
    if (p < 0) p += r;
  return {ctx.transpose(x, perm)};
}

// The axes of Squeeze/Unsqueeze: an attribute before opset 13, an optional input from 13.
Ints squeeze_axes(ImportContext& ctx) {
  if (ctx.opset() < 13 || !ctx.has_input(1)) return ctx.attr_ints("axes");
  return *ctx.ints_of(ctx.input(1), "the axes");
}

// Axes given as a run-time tensor (opset 13+): the IR op takes them as its input 1.
ir::Value* runtime_axes(ImportContext& ctx) {
  if (ctx.opset() < 13 || !ctx.has_input(1) || ctx.ints_of(ctx.input(1), "the axes")) return nullptr;
  return ctx.input(1);
}

Values import_squeeze(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  if (ir::Value* a = runtime_axes(ctx)) return {ctx.add1("Squeeze", {x, a})};
  Ints axes = squeeze_axes(ctx);
  int64_t r = ImportContext::rank(x);
  for (auto& a : axes) a = ctx.axis(a, r, "axis");
  if (axes.empty()) {
    for (int64_t d = 0; d < r; ++d) {
      if (x->shape[d] < 0)
        ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DYNAMIC,
                 "Squeeze without axes needs known dims to find those of size 1, got " + dims_str(x->shape));
      if (x->shape[d] == 1) axes.push_back(d);
    }
    if (axes.empty()) return {ctx.identity(x)};
  }
  ir::Attrs at;
  at.set("axes", axes);
  ir::Value* y = ctx.add1("Squeeze", {x}, std::move(at));
  if (auto sym = ctx.sym_of(x); sym && y->shape.size() <= 1) ctx.set_sym(y, *sym);
  return {y};
}

Values import_unsqueeze(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  if (ir::Value* a = runtime_axes(ctx)) return {ctx.add1("Unsqueeze", {x, a})};
  Ints axes = squeeze_axes(ctx);
  if (axes.empty()) ctx.fail(ParserErrorCode::kINVALID_NODE, "Unsqueeze needs axes");
  int64_t out_rank = ImportContext::rank(x) + static_cast<int64_t>(axes.size());
  for (auto& a : axes) a = ctx.axis(a, out_rank, "axis");
  ir::Value* y = ctx.unsqueeze(x, axes);
  if (auto sym = ctx.sym_of(x); sym && out_rank == 1) ctx.set_sym(y, *sym);
  return {y};
}

Values import_concat(ImportContext& ctx) {
  Values ins;
  for (size_t i = 0; i < ctx.num_inputs(); ++i)
    if (ir::Value* v = ctx.input(i)) ins.push_back(v);
  if (ins.empty()) ctx.fail(ParserErrorCode::kINVALID_NODE, "Concat needs at least one input");
  int64_t axis = ctx.req_attr_i("axis");
  if (ins.size() == 1) return {ctx.identity(ins[0])};
  ir::Attrs at;
  at.set("axis", axis);
  ir::Value* y = ctx.add1("Concatenation", ins, std::move(at));
  if (y->shape.size() == 1) {  // shape vectors: concatenate their symbols
    ImportContext::SymShape all;
    for (ir::Value* v : ins) {
      auto sym = ctx.sym_of(v);
      if (!sym) return {y};
      all.insert(all.end(), sym->begin(), sym->end());
    }
    ctx.set_sym(y, all);
  }
  return {y};
}

Values import_split(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  int n = static_cast<int>(ctx.num_outputs());
  if (n < 1) ctx.fail(ParserErrorCode::kINVALID_NODE, "Split needs at least one output");
  ir::Attrs at;
  at.set("axis", ctx.axis(ctx.attr_i("axis", 0), ImportContext::rank(x)));
  ir::Value* sizes = nullptr;
  if (ctx.opset() < 13) {
    Ints split = ctx.attr_ints("split");
    if (!split.empty()) at.set("split", split);
  } else if (ctx.has_input(1)) {
    if (auto s = ctx.ints_of(ctx.input(1), "the split sizes")) at.set("split", *s);
    else sizes = ctx.input(1);
  }
  if (ctx.opset() >= 18 && ctx.has_attr("num_outputs") && ctx.attr_i("num_outputs", n) != n)
    ctx.fail(ParserErrorCode::kINVALID_NODE, "Split: num_outputs is " + std::to_string(ctx.attr_i("num_outputs", n)) +
                                                 " but the node has " + std::to_string(n) + " outputs");
  ir::Node* node = ctx.add("Split", {x, sizes}, std::move(at), n);
  return node->outputs;
}

// Slice onto DynamicSlice (ONNX semantics); opset < 10 takes starts/ends/axes as attributes.
Values import_slice(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  if (ctx.opset() < 10) {
    Ints starts = ctx.req_attr_ints("starts"), ends = ctx.req_attr_ints("ends");
    Ints axes = ctx.attr_ints("axes");
    if (axes.empty())
      for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
    return {ctx.add1("DynamicSlice", {x, ctx.const_i64(starts), ctx.const_i64(ends), ctx.const_i64(axes)})};
  }
  ir::Value* y = ctx.add1("DynamicSlice",
                          {x, ctx.required_input(1), ctx.required_input(2), ctx.input(3), ctx.input(4)});
  // Slices of a symbolic shape vector (x.shape[1:]) stay symbolic.
  auto sym = ImportContext::rank(x) == 1 ? ctx.sym_of(x) : std::nullopt;
  if (sym && y->shape.size() == 1 && y->shape[0] >= 0) {
    auto s = ctx.ints_of(ctx.input(1), "starts"), e = ctx.ints_of(ctx.input(2), "ends");
    std::optional<Ints> t = ctx.has_input(4) ? ctx.ints_of(ctx.input(4), "steps") : Ints{1};
    if (s && e && t && s->size() == 1 && e->size() == 1 && t->size() == 1 && (*t)[0] != 0) {
      int64_t n = static_cast<int64_t>(sym->size()), st = (*t)[0];
      int64_t b = (*s)[0] < 0 ? (*s)[0] + n : (*s)[0];
      b = st > 0 ? std::clamp<int64_t>(b, 0, n) : std::clamp<int64_t>(b, -1, n - 1);
      ImportContext::SymShape out;
      for (int64_t i = 0; i < y->shape[0]; ++i) {
        int64_t k = b + i * st;
        if (k < 0 || k >= n) return {y};
        out.push_back((*sym)[k]);
      }
      ctx.set_sym(y, out);
    }
  }
  return {y};
}

Values import_expand(ImportContext& ctx) {
  return {ctx.add1("Expand", {ctx.required_input(0), ctx.required_input(1)})};
}

Values import_tile(ImportContext& ctx) {
  return {ctx.add1("Tile", {ctx.required_input(0), ctx.required_input(1)})};
}

// Pad: pads/value attributes before opset 11; pads, constant_value (and axes from 18) inputs after.
Values import_pad(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  std::string mode = ctx.attr_s("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge" && mode != "wrap")
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR, "Pad: unknown mode '" + mode + "'");
  ir::Attrs at;
  at.set("mode", mode);
  if (ctx.opset() < 11) {
    Ints pads = ctx.attr_ints("pads", ctx.attr_ints("paddings"));
    at.set("pads", pads);
    at.set("value", static_cast<double>(ctx.attr_f("value", 0.0f)));
    return {ctx.add1("Pad", {x}, std::move(at))};
  }
  ir::Value* pads = ctx.required_input(1);
  ir::Value* value = ctx.input(2);
  ir::Value* axes = ctx.input(3);
  int64_t r = ImportContext::rank(x);
  auto pads_v = ctx.ints_of(pads, "the pads");
  std::optional<Ints> axes_v;
  if (axes) axes_v = ctx.ints_of(axes, "the axes");
  if (pads_v && (!axes || axes_v)) {
    Ints full = *pads_v;
    if (axes) {  // spread the per-axis pads over all dims
      size_t n = axes_v->size();
      if (pads_v->size() != 2 * n)
        ctx.fail(ParserErrorCode::kINVALID_NODE, "Pad: " + std::to_string(pads_v->size()) + " pads for " +
                                                     std::to_string(n) + " axes (need begins and ends)");
      full.assign(2 * r, 0);
      for (size_t i = 0; i < n; ++i) {
        int64_t a = ctx.axis((*axes_v)[i], r, "pad axis");
        full[a] = (*pads_v)[i];
        full[a + r] = (*pads_v)[i + n];
      }
    }
    at.set("pads", full);
    pads = nullptr;
    axes = nullptr;
  }
  if (value) {
    if (const HostTensor* t = ctx.value_of(value)) {
      at.set("value", t->numel() ? t->get_f64(0) : 0.0);
      value = nullptr;
    } else if (value->dtype != x->dtype) {
      value = ctx.cast(value, x->dtype);
    }
  } else {
    at.set("value", 0.0);
  }
  return {ctx.add1("Pad", {x, pads, value, axes}, std::move(at))};
}

// DepthToSpace / SpaceToDepth as reshape -> transpose -> reshape. C, H and W must be static (N may vary).
ir::Value* shuffle(ImportContext& ctx, ir::Value* x, const Ints& reshape, const Ints& perm) {
  ir::Attrs at;
  at.set("has_reshape", int64_t{1});
  at.set("reshape_dims", reshape);
  at.set("zero_is_placeholder", int64_t{1});
  if (!perm.empty()) at.set("second_transpose", perm);
  return ctx.add1("Shuffle", {x}, std::move(at));
}

void check_static_chw(ImportContext& ctx, ir::Value* x) {
  if (x->shape.size() != 4)
    ctx.fail(ParserErrorCode::kINVALID_NODE, ctx.op_type() + " needs a 4-D input, got " + dims_str(x->shape));
  for (int d = 1; d < 4; ++d)
    if (x->shape[d] < 0)
      ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DYNAMIC,
               ctx.op_type() + " needs static C, H and W, got " + dims_str(x->shape));
}

Values import_depth_to_space(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  check_static_chw(ctx, x);
  int64_t b = ctx.req_attr_i("blocksize");
  int64_t C = x->shape[1], H = x->shape[2], W = x->shape[3];
  if (b <= 0 || C % (b * b) != 0)
    ctx.fail(ParserErrorCode::kINVALID_NODE, "DepthToSpace: channels " + std::to_string(C) +
                                                 " are not divisible by blocksize^2 = " + std::to_string(b * b));
  std::string mode = ctx.attr_s("mode", "DCR");
  int64_t c = C / (b * b);
  ir::Value* t;
  if (mode == "DCR") t = shuffle(ctx, x, {0, b, b, c, H, W}, {0, 3, 4, 1, 5, 2});
  else if (mode == "CRD") t = shuffle(ctx, x, {0, c, b, b, H, W}, {0, 1, 4, 2, 5, 3});
  else ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR, "DepthToSpace: unknown mode '" + mode + "'");
  return {shuffle(ctx, t, {0, c, H * b, W * b}, {})};
}

Values import_space_to_depth(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  check_static_chw(ctx, x);
  int64_t b = ctx.req_attr_i("blocksize");
  int64_t C = x->shape[1], H = x->shape[2], W = x->shape[3];
  if (b <= 0 || H % b != 0 || W % b != 0)
    ctx.fail(ParserErrorCode::kINVALID_NODE, "SpaceToDepth: H and W of " + dims_str(x->shape) +
                                                 " are not divisible by blocksize " + std::to_string(b));
  std::string mode = ctx.attr_s("mode", "DCR");  // the attribute came with opset 24
  Ints perm;
  if (mode == "DCR") perm = {0, 3, 5, 1, 2, 4};
  else if (mode == "CRD") perm = {0, 1, 3, 5, 2, 4};
  else ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR, "SpaceToDepth: unknown mode '" + mode + "'");
  ir::Value* t = shuffle(ctx, x, {0, C, H / b, b, W / b, b}, perm);
  return {shuffle(ctx, t, {0, C * b * b, H / b, W / b}, {})};
}

}  // namespace

KILN_REGISTER_IMPORTER("", "Reshape", import_reshape);
KILN_REGISTER_IMPORTER("", "Flatten", import_flatten);
KILN_REGISTER_IMPORTER("", "Transpose", import_transpose);
KILN_REGISTER_IMPORTER("", "Squeeze", import_squeeze);
KILN_REGISTER_IMPORTER("", "Unsqueeze", import_unsqueeze);
KILN_REGISTER_IMPORTER("", "Concat", import_concat);
KILN_REGISTER_IMPORTER("", "Split", import_split);
KILN_REGISTER_IMPORTER("", "Slice", import_slice);
KILN_REGISTER_IMPORTER("", "Expand", import_expand);
KILN_REGISTER_IMPORTER("", "Tile", import_tile);
KILN_REGISTER_IMPORTER("", "Pad", import_pad);
KILN_REGISTER_IMPORTER("", "DepthToSpace", import_depth_to_space);
KILN_REGISTER_IMPORTER("", "SpaceToDepth", import_space_to_depth);

}  // namespace kiln::onnx
