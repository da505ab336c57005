// Einsum as the layers every backend runs fast: a one- or two-operand Einsum over float32 operands with
// shapes known at build time becomes transposes/reshapes (one Shuffle per operand), a batched
// MatrixMultiply (cuBLASLt on the GPU, sgemm on the CPU) and one Shuffle into the output's order. Labels
// only one operand has and the output lacks are summed first (Reduce). Diagonals (a label repeated within
// an operand), size-1 broadcasting between operands, three or more operands and unknown dims keep the
// Einsum layer (its generic kernel).
#pragma once
#include "passes/pass.h"

namespace kiln::passes {

class LowerEinsum : public Pass {
 public:
  std::string name() const override { return "lower-einsum"; }
  bool run(ir::Graph& g) override;
};

}  // namespace kiln::passes
