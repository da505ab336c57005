// CPU kernels for Convolution and Deconvolution (float32, NC<spatial...> with 1 to 3 spatial dims).
// Convolution's fused epilogue (residual input 3, `activation`) runs after the convolution in place.
// This file turns the node's attributes into the compute core's parameters (backends/cpu/conv.h):
// SAME_UPPER/SAME_LOWER padding is computed here, and for EXPLICIT_ROUND_UP the end padding is widened
// so that the core's floor formula gives the (ceil) output size the shape inference chose.
#include <stdexcept>

#include "backends/cpu/conv.h"
#include "backends/cpu/kernel.h"
#include "backends/cpu/kernels/fused_epilogue.h"
#include "ir/op_registry.h"  // KILN_CAT, used by KILN_REGISTER_CPU_KERNEL

namespace kiln::cpu {
namespace {

using Ints = std::vector<int64_t>;

enum PaddingMode : int64_t { kRoundDown = 0, kRoundUp = 1, kSameUpper = 2, kSameLower = 3 };

Ints spatial(const KernelContext& ctx, const char* name, size_t nsp, int64_t def) {
  Ints v = ctx.attrs().ints(name);
  if (v.empty()) return Ints(nsp, def);
  if (v.size() != nsp)
    ctx.fail(std::string("'") + name + "' has " + std::to_string(v.size()) + " values, expected " + std::to_string(nsp));
  return v;
}

void check_f32(const KernelContext& ctx, const TensorRef& t, const char* what) {
  if (t.dtype != DataType::kFLOAT)
    ctx.fail(std::string(what) + " must be float32 on the CPU, got " + dtype_name(t.dtype));
}

void run_conv(KernelContext& ctx, bool deconv) {
  const TensorRef& x = ctx.input(0);
  const TensorRef& w = ctx.input(1);
  TensorRef& y = ctx.out[0];
  check_f32(ctx, x, "the input");
  check_f32(ctx, w, "the weights");
  const float* bias = nullptr;
  int64_t K = y.shape[1];
  if (ctx.has_input(2)) {
    check_f32(ctx, ctx.in[2], "the bias");
    if (ctx.in[2].numel() != K)
      ctx.fail("the bias has " + std::to_string(ctx.in[2].numel()) + " elements, expected " + std::to_string(K));
    bias = ctx.in[2].as<float>();
  }
  size_t nsp = x.shape.size() - 2;
  if (nsp < 1 || nsp > 3) ctx.fail("expected 1 to 3 spatial dims, got input " + dims_str(x.shape));
  int64_t mode = ctx.attrs().i("padding_mode", kRoundDown);
  ConvNdParams p;
  p.N = x.shape[0];
  p.C = x.shape[1];
  p.K = K;
  p.groups = ctx.attrs().i("groups", 1);
  p.kernel = Ints(w.shape.begin() + 2, w.shape.end());
  p.stride = spatial(ctx, "stride", nsp, 1);
  p.dilation = spatial(ctx, "dilation", nsp, 1);
  p.pad_begin = spatial(ctx, "pre_padding", nsp, 0);
  p.pad_end = spatial(ctx, "post_padding", nsp, 0);
  p.in_spatial = Ints(x.shape.begin() + 2, x.shape.end());
  p.out_spatial = Ints(y.shape.begin() + 2, y.shape.end());
  for (size_t i = 0; i < nsp; ++i) {
    int64_t in = p.in_spatial[i], out = p.out_spatial[i], s = p.stride[i];
    int64_t eff = p.dilation[i] * (p.kernel[i] - 1) + 1;
    if (mode == kSameUpper || mode == kSameLower) {
      // Conv: out = ceil(in / s). Deconv: out = in * s (+ output_padding), total padding eff - s.
      int64_t total = deconv ? eff - s : (out - 1) * s + eff - in;
      total = std::max<int64_t>(total, 0);  // deconv with kernel < stride: the extra outputs hold the bias
      int64_t small = total / 2, large = total - small;
      p.pad_begin[i] = mode == kSameUpper ? small : large;
      p.pad_end[i] = mode == kSameUpper ? large : small;
    } else if (mode == kRoundUp && !deconv) {
      p.pad_end[i] = std::max(p.pad_end[i], (out - 1) * s + eff - in - p.pad_begin[i]);
    }
  }
  if (p.N * p.K == 0 || y.numel() == 0) return;
  try {
    if (deconv) {
      conv_transpose_nd_nchw(p, x.as<float>(), w.as<float>(), bias, y.as<float>(), ctx.pool);
    } else if (nsp == 2) {
      Conv2dParams q{p.N,           p.C,           x.shape[2],      x.shape[3],     p.K,
                     p.kernel[0],   p.kernel[1],   p.stride[0],     p.stride[1],    p.pad_begin[0],
                     p.pad_begin[1], p.pad_end[0], p.pad_end[1],    p.dilation[0],  p.dilation[1],
                     p.groups,      y.shape[2],    y.shape[3]};
      conv2d_nchw(q, x.as<float>(), w.as<float>(), bias, y.as<float>(), ctx.pool);
    } else {
      conv_nd_nchw(p, x.as<float>(), w.as<float>(), bias, y.as<float>(), ctx.pool);
    }
  } catch (const std::invalid_argument& e) {
    ctx.fail(e.what());
  }
  // Convolution's fused epilogue: y = act(conv + bias + residual), the bias already added above.
  if (!deconv) apply_fused_epilogue<float>(ctx, y.as<float>(), y.numel(), nullptr, 0, fused_residual<float>(ctx, 3));
}

// dst = src transposed by `perm` (4-D float32; out dim i = in dim perm[i]).
std::vector<float> transposed4(const TensorRef& t, const Ints& perm, Dims* shape) {
  const Dims& s = t.shape;
  Dims o{s[perm[0]], s[perm[1]], s[perm[2]], s[perm[3]]};
  int64_t in_strides[4] = {s[1] * s[2] * s[3], s[2] * s[3], s[3], 1};
  std::vector<float> out(static_cast<size_t>(t.numel()));
  const float* src = t.as<float>();
  size_t k = 0;
  for (int64_t a = 0; a < o[0]; ++a)
    for (int64_t b = 0; b < o[1]; ++b)
      for (int64_t c = 0; c < o[2]; ++c)
        for (int64_t d = 0; d < o[3]; ++d)
          out[k++] = src[a * in_strides[perm[0]] + b * in_strides[perm[1]] + c * in_strides[perm[2]] +
                         d * in_strides[perm[3]]];
  *shape = o;
  return out;
}

// Channels-last (attr channels_last, from passes/channels_last): NHWC data and [K, kh, kw, C/g] weights. The
// CPU runs it as its NCHW twin between transposes: the GPU is where channels-last pays.
void run_conv_channels_last(KernelContext& ctx) {
  static const Ints to_nchw{0, 3, 1, 2}, to_nhwc{0, 2, 3, 1};
  for (size_t i : {size_t{0}, size_t{1}, size_t{3}})
    if (ctx.has_input(i)) check_f32(ctx, ctx.in[i], "channels-last convolution operands");
  KernelContext nchw = ctx;
  std::vector<std::vector<float>> keep;
  for (size_t i : {size_t{0}, size_t{1}, size_t{3}}) {
    if (!ctx.has_input(i)) continue;
    if (ctx.in[i].shape.size() != 4) ctx.fail("channels-last convolution needs 4-D tensors, input " + std::to_string(i) +
                                              " is " + dims_str(ctx.in[i].shape));
    keep.push_back(transposed4(ctx.in[i], to_nchw, &nchw.in[i].shape));
    nchw.in[i].data = keep.back().data();
  }
  const TensorRef& y = ctx.out[0];
  std::vector<float> y_nchw(static_cast<size_t>(y.numel()));
  nchw.out[0].shape = Dims{y.shape[0], y.shape[3], y.shape[1], y.shape[2]};
  nchw.out[0].data = y_nchw.data();
  run_conv(nchw, false);
  Dims back;
  std::vector<float> r = transposed4(nchw.out[0], to_nhwc, &back);
  std::copy(r.begin(), r.end(), y.as<float>());
}

void k_convolution(KernelContext& ctx) {
  if (ctx.attrs().i("channels_last", 0)) return run_conv_channels_last(ctx);
  run_conv(ctx, false);
}
void k_deconvolution(KernelContext& ctx) { run_conv(ctx, true); }

}  // namespace

KILN_REGISTER_CPU_KERNEL("Convolution", &k_convolution);
KILN_REGISTER_CPU_KERNEL("Deconvolution", &k_deconvolution);

}  // namespace kiln::cpu
