// FuseGatherAddend: Gather (rows along axis 0, DEFAULT mode) -> ElementWise SUM with another tensor becomes one
// Gather with that tensor as its addend, input 2 (ir/OPS.md): y = Gather(data, indices) + addend, one kernel
// instead of two. It is how GPT-2 starts: token embedding rows plus the position embedding (a constant
// [1, S, E] once folded, or a second Gather of the position table).
//
// Fused only when the SUM is the gathered value's one use (and that value is no network output), both
// operands and the SUM's output have one float dtype (float32/16, bf16), the SUM's output has the gathered
// shape, and the addend's shape is one the kernels add as they copy (ir/gather_addend.h: broadcast only along
// leading dims). A broadcast addend must have known dims; an unknown dim is taken as equal to the output's
// only when the addend has the output's shape exactly (a dynamic batch: both come from the same input, and
// run-time shape inference checks the real shapes), as FuseGemmEpilogue takes a residual. Layers whose user
// precision constraints differ are not merged. Either operand order; the Gather keeps its name, takes the
// SUM's output value and lists the SUM in its `fused` attribute.
#pragma once
#include "passes/pass.h"

namespace kiln::passes {

class FuseGatherAddend : public Pass {
 public:
  std::string name() const override { return "fuse-gather-addend"; }
  bool run(ir::Graph& g) override;
};

}  // namespace kiln::passes
