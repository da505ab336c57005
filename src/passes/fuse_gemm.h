// FuseGemmEpilogue: MatrixMultiply -> [bias: ElementWise SUM with a constant [N] / [1,...,1,N] (N = the
// output's last dim; B a matrix), or with a 1-D [N] tensor] -> [residual: ElementWise SUM with a tensor of the
// output's shape] -> [Activation] becomes one MatrixMultiply with inputs (a, b, bias, residual) and
// `activation`/`act_alpha`/`act_beta` (ir/OPS.md): y = act(a@b + bias + residual), which cuBLASLt runs as a
// GEMM epilogue. Each intermediate value must have that one use and not be a network output; layers whose
// user precision constraints differ are not merged. The MatrixMultiply keeps its name, takes the last
// absorbed node's output value and lists the absorbed layers in its `fused` attribute. Float tensors only.
#pragma once
#include "passes/pass.h"

namespace kiln::passes {

class FuseGemmEpilogue : public Pass {
 public:
  std::string name() const override { return "fuse-gemm-epilogue"; }
  bool run(ir::Graph& g) override;
};

}  // namespace kiln::passes
