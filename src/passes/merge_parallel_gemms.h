// Parallel GEMMs on one input as one wider GEMM. Attention computes q, k and v as three MatrixMultiply
// (+ bias add) layers on the same x [B, S, 768]; each is a GEMM with N = 768, which cuBLASLt runs at ~480
// TFLOP/s on an H200, while the one GEMM x @ [Wq | Wk | Wv] with N = 2304 runs at ~700 TFLOP/s. So
//
//   y_i = A @ W_i (+ b_i)   for i = 1..n, every W_i a constant matrix
//
// becomes MatrixMultiply(A, [W_1 | ... | W_n]) (-> ElementWise SUM [b_1 | ... | b_n]) -> Split along the last
// axis (attribute `axis` = rank - 1, `split` = [N_1, ..., N_n]), whose outputs are the old y_i values
// themselves (names, users kept). The Split is left plain so that FuseAttention can read the packed GEMM output
// through it, and the bias add so that FuseGemmEpilogue takes it into the merged GEMM.
//
// A branch is a MatrixMultiply with nothing fused yet (two inputs, no activation), op_a NONE or TRANSPOSE (the
// same for all), a float32/float16/bfloat16 constant 2-D weight read by nothing else (op_b NONE [K, N] or
// TRANSPOSE [N, K]; they may differ: the merged weight is [N, K] TRANSPOSE when all were, else [K, N]), no
// user-set precision or output types, and an output that is no graph output. Branches merge in graph order.
// The bias is taken only when every branch's output has exactly one user, an ElementWise SUM (no user-set
// types, not a graph output) with a constant of the output's dtype that broadcasts along the last dim only
// ([N] or [1, .., 1, N]); otherwise the adds stay on the Split's outputs. Anything else is left as it is.
#pragma once
#include "passes/pass.h"

namespace kiln::passes {

class MergeParallelGemms : public Pass {
 public:
  std::string name() const override { return "merge-parallel-gemms"; }
  bool run(ir::Graph& g) override;
};

}  // namespace kiln::passes
