// Shape/type inference for FusedAttention: softmax(scale * q @ k^T + mask) @ v in one op (made by the
// fuse-attention pass from MatrixMultiply / ElementWise / SoftMax chains). Contract: ir/OPS.md; how q, k, v
// and the output may be stored: ir/ops/fused_attention_format.h.
#include <string>
#include <vector>

#include "ir/op_registry.h"
#include "ir/ops/fused_attention_format.h"

namespace kiln::ir {
namespace {

bool attn_float(DataType t) { return t == DataType::kFLOAT || t == DataType::kHALF || t == DataType::kBF16; }

// q [B, H, Sq, D], k [B, H, Sk, D] (kT [B, H, D, Sk] with k_transposed), v [B, H, Sk, Dv] as their layouts
// store them, optional mask broadcastable to the scores [B, H, Sq, Sk] without growing them ->
// [B, H, Sq, Dv] in out_layout; batch and head dims broadcast (the 3-D form [N, S, X]: its one batch dim).
void infer_fused_attention(InferContext& ctx) {
  const TensorInfo& q = ctx.in(0);
  const TensorInfo& k = ctx.in(1);
  const TensorInfo& v = ctx.in(2);
  if (!attn_float(q.dtype))
    ctx.fail(std::string("q must be float32, float16 or bfloat16, got ") + dtype_name(q.dtype));
  if (k.dtype != q.dtype || v.dtype != q.dtype)
    ctx.fail(std::string("q, k and v must share a dtype, got ") + dtype_name(q.dtype) + ", " + dtype_name(k.dtype) +
             ", " + dtype_name(v.dtype));
  const AttentionFormat f = attention_format(ctx.attrs());
  bool three_d = false;
  if (const std::string err = check_attention_format(f, q.shape, k.shape, v.shape, &three_d); !err.empty()) ctx.fail(err);
  Dims lg[3];  // logical [B, H, rows, cols] of q, k, v
  const Dims* stored[3] = {&q.shape, &k.shape, &v.shape};
  for (int t = 0; t < 3; ++t) {
    AttentionAxes ax;
    attention_axes(f.layout[t], stored[t]->size(), &ax);
    lg[t] = attention_logical_dims(*stored[t], ax);
  }
  const bool kt = f.k_transposed;
  const int64_t sq = lg[0][2], d = lg[0][3];
  const int64_t kd = kt ? lg[1][2] : lg[1][3];
  const int64_t sk = kt ? lg[1][3] : lg[1][2];
  if (d >= 0 && kd >= 0 && d != kd)
    ctx.fail("q " + dims_str(q.shape) + " and k " + dims_str(k.shape) + " disagree on the head size" +
             (kt ? " (k_transposed: k is [..., head_size, seq])" : ""));
  if (sk >= 0 && lg[2][2] >= 0 && sk != lg[2][2])
    ctx.fail("k " + dims_str(k.shape) + " and v " + dims_str(v.shape) + " disagree on the key length");
  const int64_t c = ctx.attrs().i("causal", 0);
  if (c != 0 && c != 1) ctx.fail("attribute 'causal' must be 0 or 1, got " + std::to_string(c));
  // The batch dims broadcast as the unfused MatMuls' do: [N] in the 3-D form (logical H), [B, H] otherwise.
  auto batch_of = [&](const Dims& l) { return three_d ? Dims{l[1]} : Dims{l[0], l[1]}; };
  Dims batch = broadcast_shapes(ctx, batch_of(lg[0]), batch_of(lg[1]));
  batch = broadcast_shapes(ctx, batch, batch_of(lg[2]));
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
  const int64_t b = three_d ? 1 : batch[0], heads = three_d ? batch[0] : batch[1];
  ctx.set_out(0, q.dtype, attention_output_shape(f.out_layout, three_d, b, heads, sq, lg[2][3]));
}

}  // namespace

KILN_REGISTER_OP(OpDef{"FusedAttention", 3, 4, 1, &infer_fused_attention});

}  // namespace kiln::ir
