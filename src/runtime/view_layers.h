// View layers: layers whose output holds exactly its input's bytes, in the same row-major order and dtype,
// under another shape (a reshape). The static plan gives such an output its input's storage and runs no
// kernel for it, so Squeeze, Unsqueeze, Identity and reshape-only Shuffles cost nothing at run time.
#pragma once
#include "ir/graph.h"
#include "runtime/shape_analysis.h"

namespace kiln {

// Whether node n is a view layer for the run-time shapes in `shapes`: Identity, Squeeze, Unsqueeze, or a
// Shuffle whose transposes move only dims of size 1 (so the non-unit dims keep their order), with one
// output of its data input's dtype and element count. Shape-dependent: a Shuffle with a transpose is a
// view only for shapes whose permuted dims are 1.
bool is_view_layer(const ir::Node& n, const ShapeAnalysis& shapes);

}  // namespace kiln
