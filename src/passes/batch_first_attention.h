// Runs torch's batch-first nn.MultiheadAttention in the batch-first order it is given. torch transposes a
// batch_first input to sequence-first [S, B, E] before the block and back after it; after SimplifyViews and
// FuseAttention the block is
//   x [B, S, E] -> Transpose[1, 0, 2] -> in_proj (MatMul, + bias) -> Reshape [S, B, 3, H, D]
//     -> FusedAttention (q, k, v sequence-first packed, out sequence-first [S, B, H, D]) -> Reshape [S*B, E]
//     -> out_proj (MatMul, + bias) -> Reshape [S, B, E] -> Transpose[1, 0, 2] -> [B, S, E]
// The projections work row by row and attention per (batch, head), so the order of the B*S token rows does not
// matter between the two transposes: both go, in_proj reads x, attention reads its output batch-first packed
// [B, S, 3, H, D] (layout 2) and writes [B, S, H, D] (layout 1), and the reshape after out_proj is [-1, S, E].
// On the H200 the two transposes cost 0.045 ms of each ViT-B/16 layer at batch 128.
//
// Every intermediate must have one consumer, no user-set precision, and be no graph output; S, E and the head
// dims known; in_proj's and out_proj's weights constant matrices, their biases (an ElementWise SUM, if any)
// constants along the last dim. GPU pipeline, right after fuse-attention (before the GEMM epilogue takes the
// biases and, the transpose gone, the residual add after out_proj).
#pragma once
#include "passes/pass.h"

namespace kiln::passes {

class BatchFirstAttention : public Pass {
 public:
  std::string name() const override { return "batch-first-attention"; }
  bool run(ir::Graph& g) override;
};

}  // namespace kiln::passes
