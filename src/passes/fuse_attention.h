// Fuses scaled dot-product attention into one FusedAttention node (ir/OPS.md):
//
//   MatrixMultiply(q, k, op_b TRANSPOSE)   or   MatrixMultiply(q, kT) (kT: a Shuffle that swaps the last two
//       dims of k is looked through; otherwise kT is read as is, `k_transposed` = 1)
//   -> ElementWise PROD/DIV by constant scalars (the scale; q and k may also be pre-scaled by constant scalars)
//   -> ElementWise SUM with masks (any broadcastable shape that does not grow the scores) and/or
//      Select(cond, scores, c) with c <= -1e4 (GPT-2's causal Where with finfo.min): a constant lower-triangular
//      cond (with Sk >= Sq) that is the only masking becomes `causal` = 1, any other cond (or a causal one next
//      to other masks, whose fully masked rows must keep the unfused result) an additive mask Select(cond, 0, c)
//   -> SoftMax over the last axis -> MatrixMultiply(probs, v)
//
// Then the head transposes exporters put around attention are read through the node's layout attributes
// instead (ir/OPS.md), when each is a pure Transpose (or Gather) with no other consumer:
//   BERT / GPT-2: q, v = Transpose[0, 2, 1, 3](Reshape(x) [B, S, H, D]), k the same then swapped, or
//                 Transpose[0, 2, 3, 1] straight to K^T -> q, k, v tokens-major (read as [B, S, H, D])
//   ViT:          q, k, v = Gather(axis 0, i)(Transpose[2, 0, 3, 1, 4](Reshape(qkv) [B, S, 3, H, D])) ->
//                 packed, slot i (the Transpose goes once none of its Gathers is left)
//   3-D (nn.MultiheadAttention): q, v = Transpose[1, 0, 2]([S, B*H, D]), K^T = Transpose[1, 2, 0] -> tokens-major
//   after:        Transpose[0, 2, 1, 3] ([1, 0, 2] when 3-D) as the result's only consumer -> a tokens-major
//                 output [B, Sq, H, Dv] ([Sq, B*H, Dv])
//
// Every intermediate must have one consumer and not be a graph output; q, k, v, scores must be 3-D or 4-D of
// one rank and float32/float16/bfloat16; no node of the chain may have a user-set precision. Equivalent on
// finite inputs up to float rounding (a scale folded into the scores instead of q; s + c where the Select wrote
// c, equal to c for c = finfo.min); rows whose scores are all -inf give 0 where the unfused SoftMax gives NaN.
#pragma once
#include "passes/pass.h"

namespace kiln::passes {

class FuseAttention : public Pass {
 public:
  std::string name() const override { return "fuse-attention"; }
  bool run(ir::Graph& g) override;
};

}  // namespace kiln::passes
