// Tensors whose every element the build knows without knowing their shape: a constant broadcast by Expand,
// moved by views, cast, or chosen by a Select whose condition is itself uniform. Exporters build attention
// masks this way when the caller gives none: newer transformers' BERT writes
//   Where(Expand(GreaterOrEqual(Range(0, S), 0), [B, 1, S, S]), 0.0, finfo.min)
// an additive mask of zeros at the batch's size, which FuseAttention then drops instead of computing it and
// reading it in every attention (ir::FusedAttention's mask input is optional).
#pragma once
#include "ir/graph.h"

namespace kiln::passes {

// Every element of the bool tensor v is *truth (true when it is known); depth bounds the walk.
bool uniform_bool(const ir::Value* v, bool* truth, int depth = 0);

// Every element of the float tensor v is +0 or -0 (an empty tensor included).
bool all_zero(const ir::Value* v, int depth = 0);

}  // namespace kiln::passes
