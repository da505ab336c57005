// Convolution fusions.
//
// FoldBatchNormIntoConv: a Convolution followed by a per-output-channel affine map folds that map into its
// weights and bias: Scale (CHANNEL mode on axis 1, or UNIFORM; constant scale/shift; no power other than 1),
// which is how BatchNormalization with constant statistics imports, and ElementWise PROD / DIV / SUM / SUB
// with a constant that broadcasts along the channel axis only ([1,K,1,1], [K,1,1], one value), which is how
// it imports with computed statistics once they fold. New weights w*s and bias b*s + t are computed in
// double and stored in the weights' / bias' dtype (fresh constants: the old ones may have other users).
//
// FuseConvEpilogue: Convolution -> [bias add: ElementWise SUM with a per-channel constant, when the
// convolution has no bias] -> [residual: ElementWise SUM with a tensor of the output's shape] -> [Activation]
// becomes one Convolution with inputs (x, w, bias, residual) and `activation`/`act_alpha`/`act_beta`
// (ir/OPS.md). Each intermediate value must have that one use and not be a network output.
//
// Both keep the convolution's name, give it the last absorbed node's output value (so network outputs keep
// their names), list the absorbed layers in its `fused` attribute, and never merge layers whose user
// precision constraints differ. Float tensors only.
#pragma once
#include "passes/pass.h"

namespace kiln::passes {

class FoldBatchNormIntoConv : public Pass {
 public:
  std::string name() const override { return "fold-batchnorm-into-conv"; }
  bool run(ir::Graph& g) override;
};

class FuseConvEpilogue : public Pass {
 public:
  std::string name() const override { return "fuse-conv-epilogue"; }
  bool run(ir::Graph& g) override;
};

}  // namespace kiln::passes
