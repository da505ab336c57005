// FuseGatherAddend: Gather (rows along axis 0, DEFAULT mode) -> ElementWise SUM with another tensor becomes one
// Gather with that tensor as its addend, input 2 (ir/OPS.md): y = Gather(data, indices) + addend, one kernel
// instead of two. It is how GPT-2 starts: token embedding rows plus the position embedding (a constant
// [1, S, E] once folded, or a second Gather of the position table).
//
// Fused only when the SUM is the gathered value's one use (and that value is no network output; run_pipeline
// sweeps the layers earlier rewrites left dead, so a dead reader does not count), both
// operands and the SUM's output have one float dtype (float32/16, bf16), and the addend's shape may be one the
// kernels add as they copy rows (ir/gather_addend.h: broadcast only along leading dims), unknown dims taken
// as whatever fits. The fused Gather's output is the broadcast of the gathered rows and the addend, as the
// SUM's was, so dims unknown at build time are safe whatever they turn out to be: where the real shapes do not
// fit the row rule (an addend [-1, S, E] whose batch turns out larger than the indices' batch of 1, so the
// gathered side is the one broadcast), the kernels add by elements. Layers whose user precision constraints differ are
// not merged. Either operand order; the Gather keeps its name, takes the
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
