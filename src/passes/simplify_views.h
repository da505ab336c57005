// Rewrites chains of view layers (transposes, reshapes, unit-dim squeezes, constant-index Gathers) into
// equivalent ones that put each reshape where it splits a dim of the tensor a producer wrote, so that the
// fusion passes see the layouts the chains really read. torch 2.11 exports nn.MultiheadAttention as
//   in_proj [S, B, 3E] -> Reshape [S, B, 3, E] -> Unsqueeze(0) -> Transpose[3, 1, 2, 0, 4] -> Squeeze(3)
//   -> Gather(axis 0, i) [S, B, E] -> Reshape [S, B*H, D] -> Transpose[1, 0, 2] -> Reshape [B, H, S, D]
// which is, after these rules, Transpose[1, 2, 0, 3](Gather(0, i)(Transpose[2, 0, 1, 3, 4](
// Reshape(in_proj) [S, B, 3, H, D]))): slot i of a packed projection, read sequence-first (FuseAttention's
// layout 4) without copying anything. The rules, each exact:
//   unit transpose  Squeeze(Transpose_p(Unsqueeze(x))) that removes exactly the dims the Unsqueeze added ->
//                   one transpose of x
//   split first     Reshape(Transpose_p(x)) that splits one dim of the transposed tensor into two ->
//                   Transpose_p'(Reshape(x)) splitting that dim where x holds it
//   merge reshapes  Reshape(Reshape(x)) -> Reshape(x), when the outer target does not copy dims of the inner
//                   result (no 0 placeholders) and has at most one -1 (dynamic inner reshapes included)
//   split last      Reshape_k(Gather_k(Transpose_p(x))) for every user k of the transpose, each splitting the
//                   last dim (kept last by p, not gathered) the same way -> the split on x, before the
//                   transpose
//   split shape     Shape(s), s a Split output, read only by constant Gathers of entries other than the
//                   split axis -> Shape of the Split's input (so a reshape target read from s's Shape no
//                   longer keeps s's data alive)
// Intermediates must have one consumer and no user-set precision; the pass then re-infers shapes and drops
// the layers nothing reads. GPU pipeline, before fuse-attention.
#pragma once
#include "passes/pass.h"

namespace kiln::passes {

class SimplifyViews : public Pass {
 public:
  std::string name() const override { return "simplify-views"; }
  bool run(ir::Graph& g) override;
};

}  // namespace kiln::passes
