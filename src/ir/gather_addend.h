// Gather's optional fused addend (input 2, ir/OPS.md; written by passes/fuse_gather_addend): y = gathered +
// addend with numpy's broadcast, exactly the SUM the fusion replaced, so y's shape is the broadcast of the two.
// The shape rules the pass and both kernels share live here, so that none of them decides differently.
//
// The kernels take one of two paths, chosen on the real dims at run time:
// - by rows (the embedding case, the fast one): when y has the gathered shape and the addend fits it
//   (gather_addend_fits), addend element e mod numel(addend) is added to output element e as the row is copied.
//   That is numpy's broadcast exactly when the addend, right-aligned against the output, equals it on every dim
//   after a run of leading 1s. The CUDA kernel adds whole rows (it picks the addend's row once per gathered
//   row), so those 1s may not reach into the dims of a gathered row unless the output's dim there is 1 too.
// - by elements, for every other broadcast: each output element reads its gathered element and its addend
//   element through broadcast strides (either side may be the one broadcast). The pass fuses only where the
//   first path is possible (gather_addend_may_fit); the second is for shapes that turn out otherwise at run time
//   (a dim unknown at build time that is 1 where the other side's is larger).
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kiln/types.h"

namespace kiln::ir {

namespace detail {
// The row rule of both functions below; `unknown_fits`: an unknown (-1) dim on either side may be whatever
// makes the addend fit (else it matches only an unknown dim at the same place).
inline bool gather_addend_row_rule(const Dims& addend, const Dims& out, size_t row_rank, bool unknown_fits) {
  if (addend.size() > out.size() || row_rank > out.size()) return false;
  const size_t pad = out.size() - addend.size();
  const size_t first_row_dim = out.size() - row_rank;
  auto dim = [&](size_t p) { return p < pad ? int64_t{1} : addend[p - pad]; };
  auto may_be_1 = [&](int64_t d) { return d == 1 || (unknown_fits && d < 0); };
  size_t p = 0;
  while (p < out.size() && dim(p) == 1 && (p < first_row_dim || may_be_1(out[p]))) ++p;  // the broadcast 1s
  for (; p < out.size(); ++p)
    if (dim(p) != out[p] && !(unknown_fits && (dim(p) < 0 || out[p] < 0))) return false;
  return true;
}
}  // namespace detail

// Whether an addend of shape `addend` fits a Gather output of shape `out` whose trailing `row_rank` dims are
// one gathered row. The kernels ask on real dims. An unknown (-1) dim matches only an unknown dim at the same
// place.
inline bool gather_addend_fits(const Dims& addend, const Dims& out, size_t row_rank) {
  return detail::gather_addend_row_rule(addend, out, row_rank, false);
}

// Whether the addend could fit (gather_addend_fits) once the unknown (-1) dims are known: an unknown dim on
// either side may be whatever makes it fit. For the pass, which fuses where the row path is likely; the
// kernels decide on the real dims.
inline bool gather_addend_may_fit(const Dims& addend, const Dims& out, size_t row_rank) {
  return detail::gather_addend_row_rule(addend, out, row_rank, true);
}

// Dim i of `s` right-aligned in a shape of `rank` dims (numpy), 1 where s has no dim there.
inline int64_t aligned_dim(const Dims& s, size_t rank, size_t i) {
  return i < rank - s.size() ? 1 : s[i - (rank - s.size())];
}

// The first dim (counted in the broadcast's rank, shapes right-aligned) where a and b cannot broadcast however
// their unknown (-1) dims turn out: both known, different, neither 1. -1 when there is none.
inline int64_t first_broadcast_conflict(const Dims& a, const Dims& b) {
  const size_t r = std::max(a.size(), b.size());
  for (size_t i = 0; i < r; ++i) {
    const int64_t da = aligned_dim(a, r, i), db = aligned_dim(b, r, i);
    if (da >= 0 && db >= 0 && da != db && da != 1 && db != 1) return static_cast<int64_t>(i);
  }
  return -1;
}

// numpy's broadcast of two shapes of known dims into *out; false when they do not broadcast.
inline bool broadcast_known(const Dims& a, const Dims& b, Dims* out) {
  if (first_broadcast_conflict(a, b) >= 0) return false;
  const size_t r = std::max(a.size(), b.size());
  out->assign(r, 1);
  for (size_t i = 0; i < r; ++i) {
    const int64_t da = aligned_dim(a, r, i);
    (*out)[i] = da == 1 ? aligned_dim(b, r, i) : da;
  }
  return true;
}

}  // namespace kiln::ir
