// The smallest transpose equivalent to one given: unit dims dropped, and input dims that stay adjacent (in
// order) in the output merged into one. Both backends' transpose kernels run the collapsed form, so a
// permutation of a high-rank tensor usually becomes a 2-D or 3-D transpose, or a plain copy.
#pragma once
#include <cstdint>
#include <vector>

#include "kiln/types.h"

namespace kiln::ir {

struct CollapsedTranspose {
  Dims in_dims;               // row-major input dims: no unit dims, no two that stay adjacent in the output
  std::vector<int64_t> perm;  // output dim j = in_dims[perm[j]]; fewer than 2 dims: the transpose is a copy
};

// `perm` must be a permutation of shape's dims (output dim j = shape[perm[j]]).
CollapsedTranspose collapse_transpose(const Dims& shape, const std::vector<int64_t>& perm);

}  // namespace kiln::ir
