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
