// Shape/type inference for SpaceToDepthNhwc (ir/OPS.md), Kiln's own op: passes/channels_last writes it in
// front of a strided stem convolution, which then runs as a stride-1 convolution on block*block times the
// channels (channels_last.h says why). x [N, C, H, W] (NCHW) -> y [N, (H+pre+post)/block, (W+pre+post)/block,
// out_channels] (NHWC), with y[n, t, u, (qh*block + qw)*C + c] = x[n, c, t*block + qh - pre_h,
// u*block + qw - pre_w] (0 outside x) and channels from C*block*block up to out_channels zero.
#include "ir/op_registry.h"

namespace kiln::ir {
namespace {

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
  ctx.set_out(0, x.dtype, out);
}

}  // namespace

KILN_REGISTER_OP(OpDef{"SpaceToDepthNhwc", 1, 1, 1, &infer_space_to_depth_nhwc});

}  // namespace kiln::ir
