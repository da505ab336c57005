// Shape/type inference for the spatial sampling ops: GridSample, AffineGrid, RoiAlign and MaxRoiPool.
// Semantics in ir/OPS.md.
#include <string>

#include "ir/op_registry.h"

namespace kiln::ir {
namespace {

bool same(int64_t a, int64_t b) { return a < 0 || b < 0 || a == b; }

void check_float(const InferContext& ctx, size_t i, const std::string& what) {
  DataType dt = ctx.in(i).dtype;
  if (dt != DataType::kFLOAT && dt != DataType::kDOUBLE)
    ctx.fail(what + " (input " + std::to_string(i) + ") must be float32 or float64, got " + dtype_name(dt));
}

// GridSample: x [N, C, D1..Dr], grid [N, O1..Or, r] -> [N, C, O1..Or].
void infer_grid_sample(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  const TensorInfo& g = ctx.in(1);
  check_float(ctx, 0, "the input");
  check_float(ctx, 1, "the grid");
  const size_t r = x.shape.size();
  if (r < 3) ctx.fail("the input must be [N, C, spatial...] with at least one spatial dim, got " + dims_str(x.shape));
  if (g.shape.size() != r || !same(g.shape[0], x.shape[0]) || !same(g.shape[r - 1], static_cast<int64_t>(r - 2)))
    ctx.fail("the grid must be [N, out spatial..., " + std::to_string(r - 2) + "] for input " + dims_str(x.shape) +
             ", got " + dims_str(g.shape));
  int64_t mode = ctx.attrs().i("mode", 1);
  if (mode < 0 || mode > 2) ctx.fail("unknown mode " + std::to_string(mode) + " (expected NEAREST 0, LINEAR 1, CUBIC 2)");
  int64_t pad = ctx.attrs().i("padding_mode", 0);
  if (pad < 0 || pad > 2)
    ctx.fail("unknown padding_mode " + std::to_string(pad) + " (expected ZEROS 0, BORDER 1, REFLECTION 2)");
  Dims out = {x.shape[0] >= 0 ? x.shape[0] : g.shape[0], x.shape[1]};
  out.insert(out.end(), g.shape.begin() + 1, g.shape.end() - 1);
  ctx.set_out(0, x.dtype, out);
}

// AffineGrid: theta [N, r, r+1] (r = 2 or 3), size (int64 [r+2]: N, C, spatial...) -> [N, spatial..., r].
void infer_affine_grid(InferContext& ctx) {
  const TensorInfo& theta = ctx.in(0);
  const TensorInfo& size = ctx.in(1);
  check_float(ctx, 0, "theta");
  if (size.dtype != DataType::kINT64 && size.dtype != DataType::kINT32)
    ctx.fail(std::string("size (input 1) must be an int64 tensor, got ") + dtype_name(size.dtype));
  if (theta.shape.size() != 3) ctx.fail("theta must be [N, 2, 3] or [N, 3, 4], got " + dims_str(theta.shape));
  int64_t r = theta.shape[1];
  if (r < 0 && size.shape.size() == 1 && size.shape[0] >= 0) r = size.shape[0] - 2;
  if (r != 2 && r != 3) ctx.fail("theta must be [N, 2, 3] or [N, 3, 4], got " + dims_str(theta.shape));
  if (!same(theta.shape[2], r + 1)) ctx.fail("theta must be [N, 2, 3] or [N, 3, 4], got " + dims_str(theta.shape));
  if (size.shape.size() != 1 || !same(size.shape[0], r + 2))
    ctx.fail("size must hold " + std::to_string(r + 2) + " values (N, C, spatial...) for theta " +
             dims_str(theta.shape) + ", got shape " + dims_str(size.shape));
  Dims out(static_cast<size_t>(r + 2), -1);
  out[0] = theta.shape[0];
  out[static_cast<size_t>(r + 1)] = r;
  if (size.value) {
    std::vector<int64_t> s = size.value->to_i64();
    if (!same(s[0], theta.shape[0]))
      ctx.fail("size " + dims_str(s) + " names batch " + std::to_string(s[0]) + " but theta is " + dims_str(theta.shape));
    for (int64_t d = 0; d < r; ++d) {
      if (s[d + 2] < 0) ctx.fail("size " + dims_str(s) + " has a negative dim");
      out[static_cast<size_t>(d + 1)] = s[d + 2];
    }
    out[0] = s[0];
  }
  ctx.set_out(0, theta.dtype, out);
}

// RoiAlign / MaxRoiPool: x [N, C, H, W], rois [R, 4] (RoiAlign; plus batch_indices [R]) or [R, 5]
// (MaxRoiPool: batch index first) -> [R, C, output_height, output_width].
void infer_roi(InferContext& ctx, bool align) {
  const TensorInfo& x = ctx.in(0);
  const TensorInfo& rois = ctx.in(1);
  check_float(ctx, 0, "the input");
  if (rois.dtype != x.dtype)
    ctx.fail(std::string("the rois (input 1) must have the input's dtype ") + dtype_name(x.dtype) + ", got " +
             dtype_name(rois.dtype));
  if (x.shape.size() != 4) ctx.fail("the input must be [N, C, H, W], got " + dims_str(x.shape));
  const int64_t cols = align ? 4 : 5;
  if (rois.shape.size() != 2 || !same(rois.shape[1], cols))
    ctx.fail("the rois must be [num_rois, " + std::to_string(cols) + "], got " + dims_str(rois.shape));
  int64_t num = rois.shape[0];
  if (align) {
    const TensorInfo& bi = ctx.in(2);
    if (bi.dtype != DataType::kINT64 && bi.dtype != DataType::kINT32)
      ctx.fail(std::string("batch_indices (input 2) must be int64, got ") + dtype_name(bi.dtype));
    if (bi.shape.size() != 1 || !same(bi.shape[0], num))
      ctx.fail("batch_indices must be [num_rois] = [" + std::to_string(num) + "], got " + dims_str(bi.shape));
    if (num < 0) num = bi.shape[0];
  }
  std::vector<int64_t> pooled = ctx.attrs().ints("pooled_shape");
  if (pooled.size() != 2 || pooled[0] <= 0 || pooled[1] <= 0)
    ctx.fail("pooled_shape must be two positive ints (height, width), got " + dims_str(pooled));
  if (ctx.attrs().f("spatial_scale", 1.0) <= 0) ctx.fail("spatial_scale must be positive");
  ctx.set_out(0, x.dtype, {num, x.shape[1], pooled[0], pooled[1]});
}

void infer_roi_align(InferContext& ctx) {
  int64_t mode = ctx.attrs().i("mode", 1);
  if (mode != 0 && mode != 1) ctx.fail("unknown mode " + std::to_string(mode) + " (expected MAX 0, AVERAGE 1)");
  if (ctx.attrs().i("sampling_ratio", 0) < 0) ctx.fail("sampling_ratio must be >= 0");
  infer_roi(ctx, true);
}
void infer_max_roi_pool(InferContext& ctx) { infer_roi(ctx, false); }

}  // namespace

KILN_REGISTER_OP(OpDef{"GridSample", 2, 2, 1, &infer_grid_sample});
KILN_REGISTER_OP(OpDef{"AffineGrid", 2, 2, 1, &infer_affine_grid});
KILN_REGISTER_OP(OpDef{"RoiAlign", 3, 3, 1, &infer_roi_align});
KILN_REGISTER_OP(OpDef{"MaxRoiPool", 2, 2, 1, &infer_max_roi_pool});

}  // namespace kiln::ir
