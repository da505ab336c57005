// Shape/type inference for the ops that scatter windows back into an image: MaxUnpool and Col2Im.
// Semantics in ir/OPS.md. Output sizes given by input values (output_shape, image_shape, block_shape)
// give -1 dims when the value is not known here.
#include <optional>
#include <string>

#include "ir/op_registry.h"

namespace kiln::ir {
namespace {

bool is_int(DataType t) { return t == DataType::kINT32 || t == DataType::kINT64; }

std::vector<int64_t> per_dim(const InferContext& ctx, const std::string& name, size_t n, int64_t def) {
  std::vector<int64_t> v = ctx.attrs().ints(name);
  if (v.empty()) v.assign(n, def);
  if (v.size() != n) ctx.fail("'" + name + "' must hold " + std::to_string(n) + " values, got " + dims_str(v));
  for (int64_t e : v)
    if (e < (def == 0 ? 0 : 1)) ctx.fail("'" + name + "' " + dims_str(v) + " has an invalid value");
  return v;
}

// MaxUnpool: x [N, C, spatial...], indices (x's shape; flat indices into the output), optional
// output_shape (int [rank]) -> zeros with x's values at the indices.
void infer_max_unpool(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  const TensorInfo& idx = ctx.in(1);
  const size_t rank = x.shape.size();
  if (rank < 3) ctx.fail("the input must be [N, C, spatial...], got " + dims_str(x.shape));
  if (!is_int(idx.dtype)) ctx.fail(std::string("the indices (input 1) must be int64, got ") + dtype_name(idx.dtype));
  if (idx.shape.size() != rank) ctx.fail("the indices " + dims_str(idx.shape) + " must have the input's shape " + dims_str(x.shape));
  const size_t sp = rank - 2;
  std::vector<int64_t> kernel = per_dim(ctx, "kernel", sp, 1);
  if (!ctx.attrs().has("kernel")) ctx.fail("missing the 'kernel' attribute");
  std::vector<int64_t> stride = per_dim(ctx, "stride", sp, 1);
  std::vector<int64_t> pads = per_dim(ctx, "pads", 2 * sp, 0);
  Dims out = x.shape;
  if (ctx.has_input(2)) {
    const TensorInfo& os = ctx.in(2);
    if (!is_int(os.dtype)) ctx.fail(std::string("output_shape (input 2) must be int64, got ") + dtype_name(os.dtype));
    if (os.shape.size() != 1 || (os.shape[0] >= 0 && os.shape[0] != static_cast<int64_t>(rank)))
      ctx.fail("output_shape must hold " + std::to_string(rank) + " values, got shape " + dims_str(os.shape));
    if (os.value) {
      std::vector<int64_t> v = os.value->to_i64();
      for (size_t d = 0; d < rank; ++d) {
        if (v[d] < 0 || (d < 2 && x.shape[d] >= 0 && v[d] != x.shape[d]))
          ctx.fail("output_shape " + dims_str(v) + " does not fit input " + dims_str(x.shape));
        out[d] = v[d];
      }
    } else {
      for (size_t d = 2; d < rank; ++d) out[d] = -1;
    }
  } else {
    for (size_t d = 0; d < sp; ++d) {
      const int64_t in = x.shape[d + 2];
      out[d + 2] = in < 0 ? -1 : (in - 1) * stride[d] + kernel[d] - pads[d] - pads[d + sp];
      if (in >= 0 && out[d + 2] < 0) ctx.fail("the output would have a negative size along spatial dim " + std::to_string(d));
    }
  }
  ctx.set_out(0, x.dtype, out);
}

// Col2Im: x [N, C*prod(block), L], image_shape and block_shape (int [r]) -> [N, C, image...]; the sum of
// the overlapping blocks (the inverse of im2col).
void infer_col2im(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  if (x.shape.size() != 3) ctx.fail("the input must be [N, C*prod(block_shape), L], got " + dims_str(x.shape));
  if (x.dtype != DataType::kFLOAT && x.dtype != DataType::kDOUBLE)
    ctx.fail(std::string("the input must be float32 or float64, got ") + dtype_name(x.dtype));
  int64_t r = -1;
  for (size_t i = 1; i < 3; ++i) {
    const TensorInfo& t = ctx.in(i);
    const char* what = i == 1 ? "image_shape" : "block_shape";
    if (!is_int(t.dtype)) ctx.fail(std::string(what) + " must be int64, got " + dtype_name(t.dtype));
    if (t.shape.size() != 1) ctx.fail(std::string(what) + " must be 1-D, got shape " + dims_str(t.shape));
    if (t.shape[0] >= 0) {
      if (r >= 0 && t.shape[0] != r) ctx.fail("image_shape and block_shape differ in length");
      r = t.shape[0];
    }
  }
  if (r < 1) ctx.fail("image_shape and block_shape must have a known length >= 1");
  per_dim(ctx, "dilations", static_cast<size_t>(r), 1);
  per_dim(ctx, "strides", static_cast<size_t>(r), 1);
  per_dim(ctx, "pads", static_cast<size_t>(2 * r), 0);
  Dims out(static_cast<size_t>(r + 2), -1);
  out[0] = x.shape[0];
  if (const HostTensor* img = ctx.in(1).value)
    for (int64_t d = 0; d < r; ++d) {
      if (img->get_i64(d) <= 0) ctx.fail("image_shape " + dims_str(img->to_i64()) + " must be positive");
      out[d + 2] = img->get_i64(d);
    }
  if (const HostTensor* blk = ctx.in(2).value) {
    int64_t vol = 1;
    for (int64_t d = 0; d < r; ++d) {
      if (blk->get_i64(d) <= 0) ctx.fail("block_shape " + dims_str(blk->to_i64()) + " must be positive");
      vol *= blk->get_i64(d);
    }
    if (x.shape[1] >= 0) {
      if (x.shape[1] % vol != 0)
        ctx.fail("input dim 1 (" + std::to_string(x.shape[1]) + ") is not a multiple of prod(block_shape) = " + std::to_string(vol));
      out[1] = x.shape[1] / vol;
    }
  }
  ctx.set_out(0, x.dtype, out);
}

}  // namespace

KILN_REGISTER_OP(OpDef{"MaxUnpool", 2, 3, 1, &infer_max_unpool});
KILN_REGISTER_OP(OpDef{"Col2Im", 3, 3, 1, &infer_col2im});

}  // namespace kiln::ir
