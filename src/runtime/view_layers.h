// View layers: layers whose outputs hold exactly bytes of their input, in the same row-major order and
// dtype: all of them under another shape (a reshape), or one contiguous block each (runtime/block_views.h).
// The static plan gives such an output its input's storage, at the block's offset, and runs no kernel for
// it, so Squeeze, Unsqueeze, Identity, reshape-only Shuffles and slices of contiguous blocks cost nothing
// at run time.
#pragma once
#include <optional>
#include <vector>

#include "ir/graph.h"
#include "runtime/shape_analysis.h"

namespace kiln {

// Whether node n is a reshape view for the run-time shapes in `shapes`: Identity, Squeeze, Unsqueeze, or a
// Shuffle whose transposes move only dims of size 1 (so the non-unit dims keep their order), with one
// output of its data input's dtype and element count. Shape-dependent: a Shuffle with a transpose is a
// view only for shapes whose permuted dims are 1.
bool is_view_layer(const ir::Node& n, const ShapeAnalysis& shapes);

// Whether n is a view layer at all (a reshape view as above, or a block view), and if so the byte offset
// at which each of its outputs starts in its data input (input 0): 0 for reshapes. nullopt when n is not
// a view layer for these shapes.
std::optional<std::vector<int64_t>> view_offsets(const ir::Node& n, const ShapeAnalysis& shapes);

}  // namespace kiln
