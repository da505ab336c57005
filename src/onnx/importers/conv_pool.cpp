// Conv, ConvTranspose and the pooling family onto Convolution / Deconvolution / Pooling / GlobalPooling.
// ONNX `pads` list all begins then all ends; auto_pad SAME_* map to the IR padding modes (Conv, pooling) or
// to explicit pads computed here (ConvTranspose, whose SAME padding ONNX Runtime places its own way).
#include <algorithm>

#include "onnx/import_context.h"

namespace kiln::onnx {
namespace {

using Values = std::vector<ir::Value*>;
using Ints = std::vector<int64_t>;

enum PaddingMode : int64_t { kRoundDown = 0, kRoundUp = 1, kSameUpper = 2, kSameLower = 3 };

struct WindowAttrs {
  Ints kernel, stride, dilation, pre, post;
  int64_t mode = kRoundDown;
  std::string auto_pad;
};

// Reads kernel_shape/strides/dilations/pads/auto_pad for `nsp` spatial dims.
WindowAttrs read_window(ImportContext& ctx, size_t nsp, const Ints& kernel_default) {
  WindowAttrs w;
  w.kernel = ctx.attr_ints("kernel_shape", kernel_default);
  if (w.kernel.empty()) ctx.fail(ParserErrorCode::kINVALID_NODE, ctx.op_type() + ": missing 'kernel_shape'");
  auto per_dim = [&](const char* name, int64_t def) {
    Ints v = ctx.attr_ints(name);
    if (v.empty()) return Ints(nsp, def);
    if (v.size() != nsp)
      ctx.fail(ParserErrorCode::kINVALID_NODE, ctx.op_type() + ": '" + name + "' " + dims_str(v) + " needs " +
                                                   std::to_string(nsp) + " values (one per spatial dim)");
    return v;
  };
  if (w.kernel.size() != nsp)
    ctx.fail(ParserErrorCode::kINVALID_NODE, ctx.op_type() + ": kernel_shape " + dims_str(w.kernel) + " needs " +
                                                 std::to_string(nsp) + " values (one per spatial dim)");
  w.stride = per_dim("strides", 1);
  w.dilation = per_dim("dilations", 1);
  Ints pads = ctx.attr_ints("pads");
  if (pads.empty()) pads.assign(2 * nsp, 0);
  if (pads.size() != 2 * nsp)
    ctx.fail(ParserErrorCode::kINVALID_NODE, ctx.op_type() + ": pads " + dims_str(pads) + " needs " +
                                                 std::to_string(2 * nsp) + " values (begins, then ends)");
  w.pre.assign(pads.begin(), pads.begin() + nsp);
  w.post.assign(pads.begin() + nsp, pads.end());
  w.auto_pad = ctx.attr_s("auto_pad", "NOTSET");
  if (w.auto_pad == "SAME_UPPER") w.mode = kSameUpper;
  else if (w.auto_pad == "SAME_LOWER") w.mode = kSameLower;
  else if (w.auto_pad == "VALID") {
    w.pre.assign(nsp, 0);
    w.post.assign(nsp, 0);
  } else if (w.auto_pad != "NOTSET" && !w.auto_pad.empty()) {
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR, ctx.op_type() + ": unknown auto_pad '" + w.auto_pad + "'");
  }
  if (w.mode == kSameUpper || w.mode == kSameLower) {
    w.pre.assign(nsp, 0);
    w.post.assign(nsp, 0);
  }
  return w;
}

void set_window(ir::Attrs& at, const WindowAttrs& w, const char* kernel_name) {
  at.set(kernel_name, w.kernel);
  at.set("stride", w.stride);
  at.set("dilation", w.dilation);
  at.set("pre_padding", w.pre);
  at.set("post_padding", w.post);
  at.set("padding_mode", w.mode);
}

size_t spatial_dims(ImportContext& ctx, ir::Value* x) {
  if (x->shape.size() < 3 || x->shape.size() > 5)
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_SHAPE, ctx.op_type() + ": input '" + x->name + "' must be [N, C, spatial...] with 1 to 3 spatial dims, got " +
                                                          dims_str(x->shape));
  return x->shape.size() - 2;
}

Values import_conv(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  ir::Value* w = ctx.required_input(1);
  ir::Value* b = ctx.input(2);
  size_t nsp = spatial_dims(ctx, x);
  if (w->shape.size() != nsp + 2)
    ctx.fail(ParserErrorCode::kINVALID_NODE, "Conv: weights '" + w->name + "' have shape " + dims_str(w->shape) +
                                                 ", expected rank " + std::to_string(nsp + 2));
  Ints wk(w->shape.begin() + 2, w->shape.end());
  WindowAttrs win = read_window(ctx, nsp, dims_known(wk) ? wk : Ints{});
  ir::Attrs at;
  set_window(at, win, "kernel");
  at.set("groups", ctx.attr_i("group", 1));
  if (w->shape[0] >= 0) at.set("num_output_maps", w->shape[0]);
  return {ctx.add1("Convolution", {x, w, b}, std::move(at))};
}

// ConvTranspose: w [C, K/group, kernel...]. Padding follows ONNX Runtime: with output_shape (or SAME_*)
// the total padding is (in-1)*stride + output_padding + (k-1)*dilation + 1 - out, split evenly with the
// odd pixel at the end for SAME_UPPER and at the start otherwise (SAME_LOWER, or output_shape alone).
Values import_conv_transpose(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  ir::Value* w = ctx.required_input(1);
  ir::Value* b = ctx.input(2);
  size_t nsp = spatial_dims(ctx, x);
  if (w->shape.size() != nsp + 2)
    ctx.fail(ParserErrorCode::kINVALID_NODE, "ConvTranspose: weights '" + w->name + "' have shape " +
                                                 dims_str(w->shape) + ", expected rank " + std::to_string(nsp + 2));
  int64_t group = ctx.attr_i("group", 1);
  Ints wk(w->shape.begin() + 2, w->shape.end());
  WindowAttrs win = read_window(ctx, nsp, dims_known(wk) ? wk : Ints{});
  Ints out_pad = ctx.attr_ints("output_padding");
  if (out_pad.empty()) out_pad.assign(nsp, 0);
  if (out_pad.size() != nsp)
    ctx.fail(ParserErrorCode::kINVALID_NODE, "ConvTranspose: output_padding " + dims_str(out_pad) + " needs " +
                                                 std::to_string(nsp) + " values");
  Ints out_shape = ctx.attr_ints("output_shape");
  if (!out_shape.empty() && out_shape.size() == nsp + 2) out_shape.erase(out_shape.begin(), out_shape.begin() + 2);
  if (!out_shape.empty() && out_shape.size() != nsp)
    ctx.fail(ParserErrorCode::kINVALID_NODE, "ConvTranspose: output_shape " + dims_str(out_shape) + " needs " +
                                                 std::to_string(nsp) + " spatial values");
  const bool same = win.mode == kSameUpper || win.mode == kSameLower;
  if (!out_shape.empty() || same) {
    for (size_t i = 0; i < nsp; ++i) {
      int64_t in = x->shape[2 + i];
      int64_t eff = (win.kernel[i] - 1) * win.dilation[i] + 1;
      int64_t total;
      if (!out_shape.empty()) {
        if (in < 0)
          ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DYNAMIC,
                   "ConvTranspose: output_shape needs static spatial input dims, got " + dims_str(x->shape));
        total = (in - 1) * win.stride[i] + out_pad[i] + eff - out_shape[i];
        if (total < 0) {  // a larger output than the kernel covers: extend with output padding
          out_pad[i] += -total;
          total = 0;
        }
      } else {
        total = std::max<int64_t>(0, out_pad[i] + eff - win.stride[i]);
      }
      if (win.mode == kSameUpper) {
        win.pre[i] = total / 2;
        win.post[i] = total - total / 2;
      } else {
        win.pre[i] = total - total / 2;
        win.post[i] = total / 2;
      }
    }
    win.mode = kRoundDown;
  }
  ir::Attrs at;
  set_window(at, win, "kernel");
  at.set("groups", group);
  at.set("output_padding", out_pad);
  if (w->shape[1] >= 0) at.set("num_output_maps", w->shape[1] * group);
  return {ctx.add1("Deconvolution", {x, w, b}, std::move(at))};
}

// MaxPool / AveragePool / LpPool.
Values pool(ImportContext& ctx, int64_t type) {
  ir::Value* x = ctx.required_input(0);
  size_t nsp = spatial_dims(ctx, x);
  if (type == 0 && ctx.output_used(1))
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE,
             "MaxPool: the Indices output is not supported (it is used by the model as '" +
                 std::string(ctx.node().output[1]) + "')");
  if (type == 0 && ctx.attr_i("storage_order", 0) != 0 && ctx.output_used(1))
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR, "MaxPool: storage_order=1 is not supported");
  WindowAttrs win = read_window(ctx, nsp, {});
  if (ctx.attr_i("ceil_mode", 0) != 0 && win.mode == kRoundDown) win.mode = kRoundUp;
  ir::Attrs at;
  set_window(at, win, "window");
  at.set("type", type);
  if (type == 1) at.set("exclude_pad", int64_t{ctx.attr_i("count_include_pad", 0) == 0});
  if (type == 64) at.set("p", ctx.attr_i("p", 2));
  at.set("blend_factor", 0.0);
  return {ctx.add1("Pooling", {x}, std::move(at))};
}

Values import_max_pool(ImportContext& ctx) { return pool(ctx, 0); }
Values import_average_pool(ImportContext& ctx) { return pool(ctx, 1); }
Values import_lp_pool(ImportContext& ctx) { return pool(ctx, 64); }

Values global_pool(ImportContext& ctx, int64_t type) {
  ir::Value* x = ctx.required_input(0);
  if (x->shape.size() < 3)
    ctx.fail(ParserErrorCode::kINVALID_NODE, ctx.op_type() + ": input must be [N, C, spatial...], got " + dims_str(x->shape));
  ir::Attrs at;
  at.set("type", type);
  if (type == 64) at.set("p", ctx.attr_i("p", 2));
  return {ctx.add1("GlobalPooling", {x}, std::move(at))};
}

Values import_global_max_pool(ImportContext& ctx) { return global_pool(ctx, 0); }
Values import_global_average_pool(ImportContext& ctx) { return global_pool(ctx, 1); }
Values import_global_lp_pool(ImportContext& ctx) { return global_pool(ctx, 64); }

}  // namespace

KILN_REGISTER_IMPORTER("", "Conv", import_conv);
KILN_REGISTER_IMPORTER("", "ConvTranspose", import_conv_transpose);
KILN_REGISTER_IMPORTER("", "MaxPool", import_max_pool);
KILN_REGISTER_IMPORTER("", "AveragePool", import_average_pool);
KILN_REGISTER_IMPORTER("", "LpPool", import_lp_pool);
KILN_REGISTER_IMPORTER("", "GlobalMaxPool", import_global_max_pool);
KILN_REGISTER_IMPORTER("", "GlobalAveragePool", import_global_average_pool);
KILN_REGISTER_IMPORTER("", "GlobalLpPool", import_global_lp_pool);

}  // namespace kiln::onnx
