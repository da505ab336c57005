// RecognizeActivations: rewrites the element-wise compositions that exporters emit for common activations
// into one Activation layer (ir/OPS.md types), so kernels (and the GEMM/conv epilogue fusions after this
// pass) see the activation:
//  - GELU (erf), as PyTorch exports it: 0.5 * x * (1 + erf(x / sqrt(2))) with x / 1.4142135 or x * 0.70710678,
//    1 + e in either operand order, and the products in any of the forms ((x * p) * 0.5, (x * 0.5) * p,
//    x * (p * 0.5), constants on either side)                                          -> GELU_ERF (12)
//  - GELU (tanh): 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))), x^3 as Pow(x, 3) or x * x * x
//                                                                                      -> GELU_TANH (13)
//  - x * Sigmoid(x)                                                                    -> SILU (65)
//  - x * HardSigmoid(x) with alpha 1/6, beta 0.5                                       -> HARD_SWISH (64)
// Constants must be single values (relative tolerance 1e-3, so float16 constants match too) that do not
// broadcast x to another shape. The last node of the pattern becomes the Activation (keeping its name and
// output value); nodes of the pattern that nothing else reads are removed.
#pragma once
#include "passes/pass.h"

namespace kiln::passes {

class RecognizeActivations : public Pass {
 public:
  std::string name() const override { return "recognize-activations"; }
  bool run(ir::Graph& g) override;
};

using RecognizeGelu = RecognizeActivations;

}  // namespace kiln::passes
