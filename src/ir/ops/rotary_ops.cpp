// Shape/type inference for RotaryEmbedding (ONNX opset 23, RoPE). Semantics in ir/OPS.md.
#include <string>

#include "ir/op_registry.h"

namespace kiln::ir {
namespace {

// x [B, H, S, D] or [B, S, H*D] (then `num_heads` is required); cos/sin [B, S, R/2], or [P, R/2] with
// position_ids [B, S] (int64) -> x's shape. R = rotary_dim (0: the head size D).
void infer_rotary(InferContext& ctx) {
  const TensorInfo& x = ctx.in(0);
  if (x.dtype != DataType::kFLOAT && x.dtype != DataType::kDOUBLE)
    ctx.fail(std::string("the input must be float32 or float64, got ") + dtype_name(x.dtype));
  if (x.shape.size() != 3 && x.shape.size() != 4)
    ctx.fail("the input must be [batch, heads, seq, head_size] or [batch, seq, hidden], got " + dims_str(x.shape));
  const int64_t heads = ctx.attrs().i("num_heads", 0);
  int64_t head_size = x.shape.back();
  if (x.shape.size() == 3) {
    if (heads <= 0) ctx.fail("a 3-D input needs num_heads");
    if (head_size >= 0) {
      if (head_size % heads) ctx.fail("hidden size " + std::to_string(head_size) + " is not a multiple of num_heads " + std::to_string(heads));
      head_size /= heads;
    }
  }
  const int64_t rot = ctx.attrs().i("rotary_dim", 0);
  if (rot < 0 || rot % 2 || (head_size >= 0 && rot > head_size))
    ctx.fail("rotary_embedding_dim " + std::to_string(rot) + " must be even and at most the head size " + std::to_string(head_size));
  const int64_t half = rot ? rot / 2 : (head_size >= 0 ? head_size / 2 : -1);
  const bool has_pos = ctx.has_input(3);
  for (size_t i = 1; i < 3; ++i) {
    const TensorInfo& c = ctx.in(i);
    const char* what = i == 1 ? "cos_cache" : "sin_cache";
    if (c.dtype != x.dtype) ctx.fail(std::string(what) + " must have the input's dtype " + dtype_name(x.dtype));
    if (c.shape.size() != (has_pos ? 2u : 3u))
      ctx.fail(std::string(what) + (has_pos ? " must be [max_position, rotary_dim/2]" : " must be [batch, seq, rotary_dim/2]") +
               ", got " + dims_str(c.shape));
    if (half >= 0 && c.shape.back() >= 0 && c.shape.back() != half)
      ctx.fail(std::string(what) + " " + dims_str(c.shape) + " must end in rotary_dim/2 = " + std::to_string(half));
  }
  if (has_pos) {
    const TensorInfo& p = ctx.in(3);
    if (p.dtype != DataType::kINT64 && p.dtype != DataType::kINT32)
      ctx.fail(std::string("position_ids must be int64, got ") + dtype_name(p.dtype));
    if (p.shape.size() != 2) ctx.fail("position_ids must be [batch, seq], got " + dims_str(p.shape));
  }
  ctx.set_out(0, x.dtype, x.shape);
}

}  // namespace

KILN_REGISTER_OP(OpDef{"RotaryEmbedding", 3, 4, 1, &infer_rotary});

}  // namespace kiln::ir
