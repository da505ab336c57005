// Shape/type inference for SpaceToDepthNhwc (ir/OPS.md), Kiln's own op: passes/channels_last writes it in
// front of a strided stem convolution, which then runs as a stride-1 convolution on block*block times the
// channels (channels_last.h says why). x [N, C, H, W] (NCHW) -> y [N, (H+pre+post)/block, (W+pre+post)/block,
// out_channels] (NHWC), with y[n, t, u, (qh*block + qw)*C + c] = x[n, c, t*block + qh - pre_h,
// u*block + qw - pre_w] (0 outside x) and channels from C*block*block up to out_channels zero.
// 'output_dtype' (optional; absent: x's dtype) lets the op convert float32 to float16/bfloat16 as it moves
// the elements (passes/fold_space_to_depth_cast.h: the Cast LowerPrecision puts in front of it goes).
#include <climits>

#include "ir/op_registry.h"

namespace kiln::ir {
namespace {

// The dtype the kernels write for x of dtype `in`: the same, or float32 converted to float16/bfloat16.
DataType output_dtype(InferContext& ctx, DataType in) {
  if (!ctx.attrs().has("output_dtype")) return in;
  const int64_t v = ctx.attrs().i("output_dtype", -1);
  if (v < INT32_MIN || v > INT32_MAX || !dtype_is_valid(static_cast<int32_t>(v)))
    ctx.fail("'output_dtype' must be a DataType value, got " + std::to_string(v));
  const DataType out = static_cast<DataType>(v);
  const bool narrowing = in == DataType::kFLOAT && (out == DataType::kHALF || out == DataType::kBF16);
  if (out != in && !narrowing)
    ctx.fail(std::string("cannot convert ") + dtype_name(in) + " to 'output_dtype' " + dtype_name(out) +
             ": only float32 -> float16/bfloat16, or the input's own dtype");
  return out;
}

void infer_space_to_depth_nhwc(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  if (x.shape.size() != 4) ctx.fail("the input must be 4-D [N, C, H, W], got " + dims_str(x.shape));
  const int64_t s = ctx.attrs().i("block", 0);
  if (s < 1) ctx.fail("'block' must be >= 1, got " + std::to_string(s));
  const std::vector<int64_t> pre = ctx.attrs().ints("pre_padding"), post = ctx.attrs().ints("post_padding");
  if (pre.size() != 2 || post.size() != 2)
    ctx.fail("'pre_padding' " + dims_str(pre) + " and 'post_padding' " + dims_str(post) + " need 2 values each (H, W)");
  if (pre[0] < 0 || pre[1] < 0) ctx.fail("'pre_padding' " + dims_str(pre) + " must not be negative");
  const int64_t c_out = ctx.attrs().i("out_channels", 0);
  const int64_t C = x.shape[1];
  if (c_out < 1 || (C >= 0 && c_out < C * s * s))
    ctx.fail("'out_channels' " + std::to_string(c_out) + " must hold the " + std::to_string(C) + " x " +
             std::to_string(s) + " x " + std::to_string(s) + " channels of the blocks");
  Dims out{x.shape[0], -1, -1, c_out};
  for (int a = 0; a < 2; ++a) {
    const int64_t in = x.shape[2 + a];
    if (in < 0) continue;
    // post_padding may be negative: the end rows no block reaches are dropped.
    const int64_t padded = in + pre[a] + post[a];
    if (padded < s || padded % s != 0)
      ctx.fail(std::string(a ? "W" : "H") + " " + std::to_string(in) + " padded by " + std::to_string(pre[a]) + "+" +
               std::to_string(post[a]) + " is " + std::to_string(padded) + ", not a positive multiple of block " +
               std::to_string(s));
    out[1 + a] = padded / s;
  }
  ctx.set_out(0, output_dtype(ctx, x.dtype), out);
}

}  // namespace

KILN_REGISTER_OP(OpDef{"SpaceToDepthNhwc", 1, 1, 1, &infer_space_to_depth_nhwc});

}  // namespace kiln::ir
