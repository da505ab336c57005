// Gather's optional fused addend (input 2, ir/OPS.md; written by passes/fuse_gather_addend): which addend
// shapes a row gather adds as it copies. One rule shared by shape inference, the pass and both kernels, so
// that none of them accepts a shape another would compute differently.
//
// The kernels add addend element e mod numel(addend) to output element e. That is numpy's broadcast exactly
// when the addend, right-aligned against the output, equals it on every dim after a run of leading 1s. The
// CUDA kernel adds whole rows (it picks the addend's row once per gathered row), so those 1s may not reach
// into the dims of a gathered row unless the output's dim there is 1 as well (nothing is broadcast there).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kiln/types.h"

namespace kiln::ir {

// Whether an addend of shape `addend` fits a Gather output of shape `out` whose trailing `row_rank` dims are
// one gathered row. An unknown (-1) dim matches only an unknown dim at the same place: inference runs again
// on the real dims, and the kernels check those.
inline bool gather_addend_fits(const Dims& addend, const Dims& out, size_t row_rank) {
  if (addend.size() > out.size() || row_rank > out.size()) return false;
  const size_t pad = out.size() - addend.size();
  const size_t first_row_dim = out.size() - row_rank;
  auto dim = [&](size_t p) { return p < pad ? int64_t{1} : addend[p - pad]; };
  size_t p = 0;
  while (p < out.size() && dim(p) == 1 && (p < first_row_dim || out[p] == 1)) ++p;  // the broadcast 1s
  for (; p < out.size(); ++p)
    if (dim(p) != out[p]) return false;
  return true;
}

}  // namespace kiln::ir
