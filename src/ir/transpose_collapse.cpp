#include "ir/transpose_collapse.h"

#include <algorithm>
#include <numeric>
#include <utility>

namespace kiln::ir {

CollapsedTranspose collapse_transpose(const Dims& shape, const std::vector<int64_t>& perm) {
  const size_t r = shape.size();
  // Drop unit dims: newid[i] is dim i's index among the others (-1 for a unit dim).
  std::vector<int64_t> newid(r, -1);
  Dims d1;
  for (size_t i = 0; i < r; ++i)
    if (shape[i] != 1) {
      newid[i] = static_cast<int64_t>(d1.size());
      d1.push_back(shape[i]);
    }
  std::vector<int64_t> p1;
  for (size_t j = 0; j < r; ++j)
    if (newid[perm[j]] >= 0) p1.push_back(newid[perm[j]]);
  // Merge input dims that stay adjacent in the output: runs of consecutive p1 entries.
  std::vector<std::pair<int64_t, int64_t>> groups;  // [first, last] input dims, in output order
  for (size_t j = 0; j < p1.size(); ++j) {
    if (j > 0 && p1[j] == groups.back().second + 1) groups.back().second = p1[j];
    else groups.push_back({p1[j], p1[j]});
  }
  // Merged input dims, ordered by their first original dim.
  const size_t m = groups.size();
  std::vector<int64_t> order(m);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return groups[a].first < groups[b].first; });
  CollapsedTranspose c;
  c.in_dims.resize(m);
  c.perm.resize(m);
  for (size_t k = 0; k < m; ++k) {
    const int64_t g = order[k];
    int64_t sz = 1;
    for (int64_t d = groups[g].first; d <= groups[g].second; ++d) sz *= d1[d];
    c.in_dims[k] = sz;
    c.perm[g] = static_cast<int64_t>(k);
  }
  return c;
}

}  // namespace kiln::ir
