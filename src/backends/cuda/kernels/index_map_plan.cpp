// Host-side planning of IndexMaps (index_map.h): compiled without CUDA so it is tested on every machine.
#include "backends/cuda/kernels/index_map.h"

#include <cstdlib>
#include <limits>

namespace kiln::cuda::kern {
namespace {

bool copies_whole(const AxisMap& a) {
  return a.mode == kAxisAffine && a.start == 0 && a.step == 1 && a.out_dim == a.in_dim;
}

}  // namespace

IndexMap collapse_identity_axes(const IndexMap& m) {
  IndexMap c = m;
  c.rank = 0;
  for (int d = 0; d < m.rank; ++d) {
    const AxisMap& a = m.ax[d];
    // One output element at input index 0 adds nothing to the offset (an empty output keeps every axis).
    if (a.out_dim == 1 && a.mode == kAxisAffine && a.start == 0 && m.rank > 1) continue;
    if (c.rank > 0) {
      AxisMap& outer = c.ax[c.rank - 1];
      if (copies_whole(outer) && copies_whole(a) && outer.in_stride == a.in_stride * a.in_dim) {
        outer.out_dim *= a.out_dim;
        outer.in_dim = outer.out_dim;
        outer.in_stride = a.in_stride;
        continue;
      }
    }
    c.ax[c.rank++] = a;
  }
  if (c.rank == 0) c.rank = 1;  // every axis was one element: one axis of one element (c.ax[0] is the default)
  return c;
}

bool index_map_fits_int32(const IndexMap& m, int64_t n) {
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
  if (n > kMax) return false;
  int64_t max_offset = 0;
  for (int d = 0; d < m.rank; ++d) {
    const AxisMap& a = m.ax[d];
    if (a.out_dim > kMax || a.in_dim > kMax) return false;
    // start + i*step for every output index i, and the reflect period 2*(in_dim - 1).
    const int64_t reach = std::llabs(a.start) + (a.out_dim > 0 ? (a.out_dim - 1) : 0) * std::llabs(a.step);
    if (std::llabs(a.step) > kMax || reach > kMax / 2 || 2 * a.in_dim > kMax) return false;
    const int64_t last = a.in_dim > 0 ? a.in_dim - 1 : 0;
    if (a.in_stride != 0 && last > kMax / std::llabs(a.in_stride)) return false;
    max_offset += last * std::llabs(a.in_stride);
    if (max_offset > kMax) return false;
  }
  return true;
}

}  // namespace kiln::cuda::kern
