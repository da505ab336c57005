// Shape/type inference for Convolution, Deconvolution, Pooling and GlobalPooling (ir/OPS.md).
// Spatial output sizes: explicit padding rounds down (or up for EXPLICIT_ROUND_UP); SAME_UPPER/LOWER
// give out = ceil(in / stride) (in * stride for Deconvolution). Unknown input dims give unknown outputs.
#include <algorithm>

#include "ir/op_registry.h"
#include "ir/ops/fused_epilogue.h"

namespace kiln::ir {
namespace {

using Ints = std::vector<int64_t>;

enum PaddingMode : int64_t { kRoundDown = 0, kRoundUp = 1, kSameUpper = 2, kSameLower = 3 };

// A per-spatial-dim attribute list: `def` repeated when absent or empty; fails when its length is wrong.
Ints spatial_attr(const InferContext& ctx, const char* name, size_t nsp, int64_t def, int64_t min_value) {
  Ints v = ctx.attrs().ints(name);
  if (v.empty()) return Ints(nsp, def);
  if (v.size() != nsp)
    ctx.fail(std::string("'") + name + "' has " + std::to_string(v.size()) + " values " + dims_str(v) + ", expected " +
             std::to_string(nsp) + " (one per spatial dim)");
  for (int64_t x : v)
    if (x < min_value)
      ctx.fail(std::string("'") + name + "' " + dims_str(v) + " has a value below " + std::to_string(min_value));
  return v;
}

int64_t padding_mode(const InferContext& ctx) {
  int64_t m = ctx.attrs().i("padding_mode", 0);
  if (m < 0 || m > 3)
    ctx.fail("unknown padding_mode " + std::to_string(m) +
             " (expected 0 EXPLICIT_ROUND_DOWN, 1 EXPLICIT_ROUND_UP, 2 SAME_UPPER, 3 SAME_LOWER)");
  return m;
}

size_t spatial_rank(const InferContext& ctx, const Dims& x) {
  if (x.size() < 3 || x.size() > 5)
    ctx.fail("input 0 must be [N, C, spatial...] with 1 to 3 spatial dims, got " + dims_str(x));
  return x.size() - 2;
}

// Output size of a sliding window (Convolution, Pooling). `pool_drop`: with ROUND_UP, a window that would
// start inside the end padding is dropped (ONNX/PyTorch ceil_mode).
int64_t window_out(const InferContext& ctx, int64_t in, int64_t k, int64_t s, int64_t d, int64_t pre, int64_t post,
                   int64_t mode, bool pool_drop, size_t axis) {
  if (in < 0) return -1;
  if (mode == kSameUpper || mode == kSameLower) return (in + s - 1) / s;
  int64_t eff = d * (k - 1) + 1;
  int64_t span = in + pre + post - eff;
  if (span < 0)
    ctx.fail("spatial dim " + std::to_string(axis) + ": the window of " + std::to_string(eff) +
             " (kernel " + std::to_string(k) + ", dilation " + std::to_string(d) + ") is larger than the padded input " +
             std::to_string(in + pre + post) + " (input " + std::to_string(in) + ", padding " + std::to_string(pre) +
             "+" + std::to_string(post) + ")");
  int64_t out = (mode == kRoundUp ? (span + s - 1) / s : span / s) + 1;
  if (mode == kRoundUp && pool_drop && (out - 1) * s >= in + pre) --out;
  return out;
}

struct Window {
  Ints kernel, stride, dilation, pre, post;
  int64_t mode;
};

Window read_window(const InferContext& ctx, const char* kernel_name, size_t nsp, const Ints& kernel_default) {
  Window w;
  w.mode = padding_mode(ctx);
  Ints k = ctx.attrs().ints(kernel_name);
  if (k.empty()) {
    if (kernel_default.empty()) ctx.fail(std::string("missing the '") + kernel_name + "' attribute");
    k = kernel_default;
  }
  if (k.size() != nsp)
    ctx.fail(std::string("'") + kernel_name + "' " + dims_str(k) + " has " + std::to_string(k.size()) +
             " values, expected " + std::to_string(nsp) + " (one per spatial dim)");
  for (int64_t v : k)
    if (v < 1) ctx.fail(std::string("'") + kernel_name + "' " + dims_str(k) + " must be positive");
  w.kernel = k;
  w.stride = spatial_attr(ctx, "stride", nsp, 1, 1);
  w.dilation = spatial_attr(ctx, "dilation", nsp, 1, 1);
  w.pre = spatial_attr(ctx, "pre_padding", nsp, 0, 0);
  w.post = spatial_attr(ctx, "post_padding", nsp, 0, 0);
  return w;
}

void check_bias(const InferContext& ctx, int64_t k) {
  if (!ctx.has_input(2)) return;
  const TensorInfo& b = ctx.in(2);
  int64_t n = volume(b.shape);
  if (n >= 0 && k >= 0 && n != k)
    ctx.fail("bias (input 2) has shape " + dims_str(b.shape) + ", expected " + std::to_string(k) + " elements");
}

// Convolution and Deconvolution share weight checks: x [N, C, sp...], w [w0, w1, kernel...].
void infer_conv_common(InferContext& ctx, bool deconv) {
  const TensorInfo& x = ctx.in(0);
  const TensorInfo& w = ctx.in(1);
  size_t nsp = spatial_rank(ctx, x.shape);
  if (w.shape.size() != x.shape.size())
    ctx.fail("weights (input 1) have shape " + dims_str(w.shape) + ", expected rank " + std::to_string(x.shape.size()) +
             " like the input " + dims_str(x.shape));
  int64_t groups = ctx.attrs().i("groups", 1);
  if (groups < 1) ctx.fail("groups must be >= 1, got " + std::to_string(groups));
  Ints wk(w.shape.begin() + 2, w.shape.end());
  bool wk_known = dims_known(wk);
  Window win = read_window(ctx, "kernel", nsp, wk_known ? wk : Ints{});
  for (size_t i = 0; i < nsp; ++i)
    if (wk[i] >= 0 && wk[i] != win.kernel[i])
      ctx.fail("'kernel' " + dims_str(win.kernel) + " does not match the weights' shape " + dims_str(w.shape));
  int64_t C = x.shape[1];
  int64_t K = ctx.attrs().i("num_output_maps", -1);
  if (!deconv) {
    // w [K, C/groups, ...]
    if (K < 0) K = w.shape[0];
    else if (w.shape[0] >= 0 && w.shape[0] != K)
      ctx.fail("num_output_maps is " + std::to_string(K) + " but the weights " + dims_str(w.shape) + " have " +
               std::to_string(w.shape[0]) + " output maps");
    if (C >= 0 && C % groups != 0)
      ctx.fail("input channels " + std::to_string(C) + " are not divisible by groups " + std::to_string(groups));
    if (C >= 0 && w.shape[1] >= 0 && w.shape[1] * groups != C)
      ctx.fail("weights " + dims_str(w.shape) + " expect " + std::to_string(w.shape[1] * groups) +
               " input channels (dim 1 x groups " + std::to_string(groups) + "), the input " + dims_str(x.shape) +
               " has " + std::to_string(C));
  } else {
    // w [C, K/groups, ...]
    if (C >= 0 && w.shape[0] >= 0 && w.shape[0] != C)
      ctx.fail("weights " + dims_str(w.shape) + " expect " + std::to_string(w.shape[0]) +
               " input channels, the input " + dims_str(x.shape) + " has " + std::to_string(C));
    if (C >= 0 && C % groups != 0)
      ctx.fail("input channels " + std::to_string(C) + " are not divisible by groups " + std::to_string(groups));
    int64_t wk_out = w.shape[1] >= 0 ? w.shape[1] * groups : -1;
    if (K < 0) K = wk_out;
    else if (wk_out >= 0 && wk_out != K)
      ctx.fail("num_output_maps is " + std::to_string(K) + " but the weights " + dims_str(w.shape) + " give " +
               std::to_string(wk_out) + " (dim 1 x groups " + std::to_string(groups) + ")");
  }
  if (K >= 0 && K % groups != 0)
    ctx.fail("output maps " + std::to_string(K) + " are not divisible by groups " + std::to_string(groups));
  check_bias(ctx, K);
  Dims out{x.shape[0], K};
  if (!deconv) {
    for (size_t i = 0; i < nsp; ++i)
      out.push_back(window_out(ctx, x.shape[2 + i], win.kernel[i], win.stride[i], win.dilation[i], win.pre[i],
                               win.post[i], win.mode, false, i));
  } else {
    Ints op = spatial_attr(ctx, "output_padding", nsp, 0, 0);
    for (size_t i = 0; i < nsp; ++i) {
      int64_t in = x.shape[2 + i];
      if (in < 0) {
        out.push_back(-1);
        continue;
      }
      int64_t o;
      if (win.mode == kSameUpper || win.mode == kSameLower)
        o = in * win.stride[i] + op[i];
      else
        o = (in - 1) * win.stride[i] - win.pre[i] - win.post[i] + win.dilation[i] * (win.kernel[i] - 1) + 1 + op[i];
      if (o < 1)
        ctx.fail("spatial dim " + std::to_string(i) + " of the output would be " + std::to_string(o) + " (input " +
                 std::to_string(in) + ", kernel " + std::to_string(win.kernel[i]) + ", stride " +
                 std::to_string(win.stride[i]) + ", padding " + std::to_string(win.pre[i]) + "+" +
                 std::to_string(win.post[i]) + ")");
      out.push_back(o);
    }
  }
  if (!deconv) check_fused_epilogue(ctx, 3, x.dtype, out);
  ctx.set_out(0, x.dtype, out);
}

// Channels-last convolution (attr channels_last = 1, made by passes/channels_last for the GPU): x [N, H, W, C],
// w [K, kh, kw, C/groups], residual and y [N, H', W', K]. Checked and inferred as its NCHW twin.
void infer_convolution(InferContext& ctx) {
  if (ctx.attrs().i("channels_last", 0) == 0) return infer_conv_common(ctx, false);
  static const Ints to_nchw{0, 3, 1, 2}, to_nhwc{0, 2, 3, 1};
  auto permute = [](const Dims& s, const Ints& p) {
    Dims out(p.size());
    for (size_t i = 0; i < p.size(); ++i) out[i] = s[static_cast<size_t>(p[i])];
    return out;
  };
  std::vector<TensorInfo> ins;
  for (size_t i = 0; i < ctx.node().inputs.size(); ++i) {
    if (!ctx.has_input(i)) {
      ins.push_back(TensorInfo::absent());
      continue;
    }
    TensorInfo t = ctx.in(i);
    t.value = nullptr;
    if (i != 2) {
      if (t.shape.size() != 4) ctx.fail("channels-last convolution needs 4-D tensors, input " + std::to_string(i) +
                                        " is " + dims_str(t.shape));
      t.shape = permute(t.shape, to_nchw);
    }
    ins.push_back(t);
  }
  InferContext nchw(ctx.node(), ins);
  infer_conv_common(nchw, false);
  ctx.set_out(0, nchw.out(0).dtype, permute(nchw.out(0).shape, to_nhwc));
}
void infer_deconvolution(InferContext& ctx) { infer_conv_common(ctx, true); }

// Output spatial sizes of a Pooling whose input has the spatial dims `in` (any layout).
Dims pooled_spatial(const InferContext& ctx, const Dims& in) {
  int64_t type = ctx.attrs().i("type", 0);
  if (type != 0 && type != 1 && type != 2 && type != 64)
    ctx.fail("unknown pooling type " + std::to_string(type) + " (expected 0 MAX, 1 AVERAGE, 2 MAX_AVERAGE_BLEND, 64 LP)");
  const size_t nsp = in.size();
  Window win = read_window(ctx, "window", nsp, {});
  Dims out;
  for (size_t i = 0; i < nsp; ++i) {
    if (win.mode <= kRoundUp && (win.pre[i] >= win.dilation[i] * (win.kernel[i] - 1) + 1 ||
                                 win.post[i] >= win.dilation[i] * (win.kernel[i] - 1) + 1))
      ctx.fail("padding " + dims_str(win.pre) + "/" + dims_str(win.post) + " must be smaller than the window " +
               dims_str(win.kernel));
    out.push_back(window_out(ctx, in[i], win.kernel[i], win.stride[i], win.dilation[i], win.pre[i], win.post[i],
                             win.mode, true, i));
  }
  return out;
}

// x [N, C, spatial...]; channels-last (attr channels_last = 1, made by passes/channels_last like
// Convolution's): x [N, spatial..., C] and y [N, spatial'..., C], with the same attributes.
void infer_pooling(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  if (ctx.attrs().i("channels_last", 0) == 0) {
    spatial_rank(ctx, x.shape);
    Dims out{x.shape[0], x.shape[1]};
    for (int64_t d : pooled_spatial(ctx, Dims(x.shape.begin() + 2, x.shape.end()))) out.push_back(d);
    ctx.set_out(0, x.dtype, out);
    return;
  }
  if (x.shape.size() < 3 || x.shape.size() > 5)
    ctx.fail("channels-last pooling: input 0 must be [N, spatial..., C] with 1 to 3 spatial dims, got " +
             dims_str(x.shape));
  Dims out{x.shape[0]};
  for (int64_t d : pooled_spatial(ctx, Dims(x.shape.begin() + 1, x.shape.end() - 1))) out.push_back(d);
  out.push_back(x.shape.back());
  ctx.set_out(0, x.dtype, out);
}

void infer_global_pooling(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  if (x.shape.size() < 3) ctx.fail("input 0 must be [N, C, spatial...], got " + dims_str(x.shape));
  int64_t type = ctx.attrs().i("type", 0);
  if (type != 0 && type != 1 && type != 64)
    ctx.fail("unknown global pooling type " + std::to_string(type) + " (expected 0 MAX, 1 AVERAGE, 64 LP)");
  Dims out = x.shape;
  for (size_t i = 2; i < out.size(); ++i) out[i] = 1;
  ctx.set_out(0, x.dtype, out);
}

}  // namespace

KILN_REGISTER_OP(OpDef{"Convolution", 2, 4, 1, &infer_convolution});  // input 3: the fused residual
KILN_REGISTER_OP(OpDef{"Deconvolution", 2, 3, 1, &infer_deconvolution});
KILN_REGISTER_OP(OpDef{"Pooling", 1, 1, 1, &infer_pooling});
KILN_REGISTER_OP(OpDef{"GlobalPooling", 1, 1, 1, &infer_global_pooling});

}  // namespace kiln::ir
