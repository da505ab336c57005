// Shape/type inference for FusedAttention: softmax(scale * q @ k^T + mask) @ v in one op (made by the
// fuse-attention pass from MatrixMultiply / ElementWise / SoftMax chains). Contract: ir/OPS.md.
#include <string>
#include <vector>

#include "ir/op_registry.h"

namespace kiln::ir {
namespace {

bool attn_float(DataType t) { return t == DataType::kFLOAT || t == DataType::kHALF || t == DataType::kBF16; }

// q [..., Sq, D], k [..., Sk, D] (kT [..., D, Sk] with k_transposed), v [..., Sk, Dv], optional mask
// broadcastable to [..., Sq, Sk] without growing it -> [..., Sq, Dv]; batch dims (one or two) broadcast.
void infer_fused_attention(InferContext& ctx) {
  const TensorInfo& q = ctx.in(0);
  const TensorInfo& k = ctx.in(1);
  const TensorInfo& v = ctx.in(2);
  if (!attn_float(q.dtype))
    ctx.fail(std::string("q must be float32, float16 or bfloat16, got ") + dtype_name(q.dtype));
  if (k.dtype != q.dtype || v.dtype != q.dtype)
    ctx.fail(std::string("q, k and v must share a dtype, got ") + dtype_name(q.dtype) + ", " + dtype_name(k.dtype) +
             ", " + dtype_name(v.dtype));
  const size_t r = q.shape.size();
  if (r != 3 && r != 4) ctx.fail("q must be [batch, heads, seq, head_size] or [batch, seq, head_size], got " + dims_str(q.shape));
  if (k.shape.size() != r || v.shape.size() != r)
    ctx.fail("q, k and v must have the same rank, got " + dims_str(q.shape) + ", " + dims_str(k.shape) + ", " +
             dims_str(v.shape));
  const bool kt = ctx.attrs().i("k_transposed", 0) != 0;
  const int64_t sq = q.shape[r - 2], d = q.shape[r - 1];
  const int64_t kd = kt ? k.shape[r - 2] : k.shape[r - 1];
  const int64_t sk = kt ? k.shape[r - 1] : k.shape[r - 2];
  if (d >= 0 && kd >= 0 && d != kd)
    ctx.fail("q " + dims_str(q.shape) + " and k " + dims_str(k.shape) + " disagree on the head size" +
             (kt ? " (k_transposed: k is [..., head_size, seq])" : ""));
  if (sk >= 0 && v.shape[r - 2] >= 0 && sk != v.shape[r - 2])
    ctx.fail("k " + dims_str(k.shape) + " and v " + dims_str(v.shape) + " disagree on the key length");
  const int64_t c = ctx.attrs().i("causal", 0);
  if (c != 0 && c != 1) ctx.fail("attribute 'causal' must be 0 or 1, got " + std::to_string(c));
  Dims batch = broadcast_shapes(ctx, Dims(q.shape.begin(), q.shape.end() - 2), Dims(k.shape.begin(), k.shape.end() - 2));
  batch = broadcast_shapes(ctx, batch, Dims(v.shape.begin(), v.shape.end() - 2));
  if (ctx.has_input(3)) {
    const TensorInfo& m = ctx.in(3);
    if (!attn_float(m.dtype)) ctx.fail(std::string("the mask must be float32, float16 or bfloat16, got ") + dtype_name(m.dtype));
    Dims scores = batch;
    scores.push_back(sq);
    scores.push_back(sk);
    if (m.shape.size() > scores.size())
      ctx.fail("the mask " + dims_str(m.shape) + " has a higher rank than the scores " + dims_str(scores));
    for (size_t i = 0; i < m.shape.size(); ++i) {
      const int64_t md = m.shape[m.shape.size() - 1 - i], sd = scores[scores.size() - 1 - i];
      if (md != 1 && md >= 0 && sd >= 0 && md != sd)
        ctx.fail("the mask " + dims_str(m.shape) + " does not broadcast to the scores " + dims_str(scores));
    }
  }
  Dims out = batch;
  out.push_back(sq);
  out.push_back(v.shape[r - 1]);
  ctx.set_out(0, q.dtype, std::move(out));
}

}  // namespace

KILN_REGISTER_OP(OpDef{"FusedAttention", 3, 4, 1, &infer_fused_attention});

}  // namespace kiln::ir
