// Folds a float16/bfloat16 -> float32 Cast after a Normalization into the Normalization itself: it stores y in
// float32 ('output_dtype', ir/OPS.md) instead of x's dtype, and the Cast goes.
//
// LowerPrecision runs a half-precision engine's LayerNorms in half precision and keeps the network's outputs
// float32, so a transformer whose output is its last LayerNorm (GPT-2's ln_f, BERT's last_hidden_state) ends
// in a Cast: one more kernel at batch 1 (2.2 us of GPT-2's 400 on the H200, eighteenth session's timeline) and a
// round trip of the output. The kernels compute y in float32 anyway; they now round it once, to float32, where
// before it was rounded to half and then widened exactly. So the result changes, toward the float32 one: each
// element moves by at most half a half-precision ulp.
//
// The Cast may read y through views of it (reshape-only Shuffles, Squeezes, Unsqueezes: GPT-2's export reshapes
// ln_f's output to the network output's shape, so LowerPrecision's Cast follows that reshape); the views then
// move float32, as the same values. Only when each value from y to the Cast is read by the next layer alone and
// is no network output (else the Cast stays, and the fold saves nothing), and no layer on the way has an
// output type (or a view a precision) the user set. Runs right after LowerPrecision (which writes the Cast),
// before FusePointwise (which would take the Cast into a fused node). On by default since its CUDA float32
// stores (backends/cuda/test_cuda_reduce.cpp) and the transformer model tests passed on the H200 (twentieth
// session); KILN_FOLD_NORMALIZATION_CAST=0 turns it off.
#pragma once
#include "passes/pass.h"

namespace kiln::passes {

class FoldNormalizationCast : public Pass {
 public:
  std::string name() const override { return "fold-normalization-cast"; }
  bool run(ir::Graph& g) override;
};

}  // namespace kiln::passes
