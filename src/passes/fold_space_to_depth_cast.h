// Folds a float32 -> float16/bfloat16 Cast into the SpaceToDepthNhwc op that reads it (ir/OPS.md).
//
// ChannelsLast writes SpaceToDepthNhwc in front of ResNet's stem convolution, on the float32 network input;
// LowerPrecision then runs the op in half precision and puts a Cast in front of it: one more kernel, and a
// whole extra pass over the input ([128, 3, 224, 224]: ~0.04 ms on the H200). The op reads every input
// element once anyway, so it reads the float32 input itself and writes the Cast's dtype ('output_dtype'),
// rounding as the Cast kernels do (bit-identical results). Only when nothing else reads the Cast's output and
// it is not a network output (else the Cast stays, and the fold would save nothing).
#pragma once
#include "passes/pass.h"

namespace kiln::passes {

class FoldSpaceToDepthCast : public Pass {
 public:
  std::string name() const override { return "fold-space-to-depth-cast"; }
  bool run(ir::Graph& g) override;
};

}  // namespace kiln::passes
