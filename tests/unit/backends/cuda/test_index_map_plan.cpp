// Host-side planning of the IndexMap kernels (backends/cuda/kernels/index_map.h), no GPU needed: which axes
// collapse into one, and when the 32-bit kernel may run. The kernels themselves, both index widths, are checked
// against the CPU in test_cuda_data_movement.cpp.
#ifdef KILN_WITH_CUDA
#include <gtest/gtest.h>

#include <initializer_list>

#include "backends/cuda/kernels/index_map.h"

namespace kiln::cuda::kern {
namespace {

// A map over a contiguous input of `in` read by an output of `out`, every axis affine from 0 (as identity_map).
IndexMap map_of(std::initializer_list<int64_t> in, std::initializer_list<int64_t> out) {
  IndexMap m;
  m.rank = static_cast<int>(in.size());
  int d = 0;
  for (int64_t n : in) m.ax[d++].in_dim = n;
  d = 0;
  for (int64_t n : out) m.ax[d++].out_dim = n;
  int64_t stride = 1;
  for (int i = m.rank - 1; i >= 0; --i) {
    m.ax[i].in_stride = stride;
    stride *= m.ax[i].in_dim;
  }
  return m;
}

TEST(IndexMapPlan, PadOfTheLastAxisKeepsTwoAxes) {
  IndexMap m = map_of({128, 224, 224, 3}, {128, 224, 224, 8});
  m.ax[3].mode = kAxisFill;
  const IndexMap c = collapse_identity_axes(m);
  ASSERT_EQ(c.rank, 2);
  EXPECT_EQ(c.ax[0].out_dim, 128 * 224 * 224);
  EXPECT_EQ(c.ax[0].in_dim, 128 * 224 * 224);
  EXPECT_EQ(c.ax[0].in_stride, 3);
  EXPECT_EQ(c.ax[1].out_dim, 8);
  EXPECT_EQ(c.ax[1].in_dim, 3);
  EXPECT_EQ(c.ax[1].in_stride, 1);
  EXPECT_EQ(c.ax[1].mode, kAxisFill);
}

TEST(IndexMapPlan, OnlyWholeInOrderAxesMerge) {
  // A slice of the middle axis splits the runs around it; the inner two merge.
  IndexMap m = map_of({4, 6, 5, 7}, {4, 3, 5, 7});
  m.ax[1].start = 2;
  const IndexMap c = collapse_identity_axes(m);
  ASSERT_EQ(c.rank, 3);
  EXPECT_EQ(c.ax[0].out_dim, 4);
  EXPECT_EQ(c.ax[0].in_stride, 6 * 5 * 7);
  EXPECT_EQ(c.ax[1].start, 2);
  EXPECT_EQ(c.ax[2].out_dim, 35);
  EXPECT_EQ(c.ax[2].in_stride, 1);

  // Steps, tiles and broadcasts (stride 0) keep their axes.
  IndexMap s = map_of({4, 6}, {4, 3});
  s.ax[1].step = 2;
  EXPECT_EQ(collapse_identity_axes(s).rank, 2);
  IndexMap t = map_of({4, 6}, {4, 12});
  t.ax[1].mode = kAxisTile;
  EXPECT_EQ(collapse_identity_axes(t).rank, 2);
  IndexMap b = map_of({4, 1}, {4, 6});
  b.ax[1].in_stride = 0;
  b.ax[1].step = 0;
  EXPECT_EQ(collapse_identity_axes(b).rank, 2);
}

TEST(IndexMapPlan, OneElementAxesGoUnlessTheyOffsetOrFill) {
  IndexMap m = map_of({1, 5, 1, 7}, {1, 5, 1, 7});
  const IndexMap c = collapse_identity_axes(m);
  ASSERT_EQ(c.rank, 1);
  EXPECT_EQ(c.ax[0].out_dim, 35);
  EXPECT_EQ(c.ax[0].in_stride, 1);

  // A one-element slice at index 2 adds an offset, and a one-element pad fills: both stay.
  IndexMap s = map_of({4, 6}, {4, 1});
  s.ax[1].start = 2;
  EXPECT_EQ(collapse_identity_axes(s).rank, 2);
  IndexMap p = map_of({4, 0}, {4, 1});
  p.ax[1].start = -1;
  p.ax[1].mode = kAxisFill;
  EXPECT_EQ(collapse_identity_axes(p).rank, 2);

  // Every axis of one element: one axis of one element.
  const IndexMap one = collapse_identity_axes(map_of({1, 1, 1}, {1, 1, 1}));
  ASSERT_EQ(one.rank, 1);
  EXPECT_EQ(one.ax[0].out_dim, 1);
  EXPECT_EQ(one.ax[0].start, 0);
}

TEST(IndexMapPlan, Int32OnlyWhereEveryIndexFits) {
  EXPECT_TRUE(index_map_fits_int32(map_of({128, 224, 224, 8}, {128, 224, 224, 8}), 128LL * 224 * 224 * 8));
  // Over 2^31 output elements, or an input offset past it, or a start far off: 64-bit.
  EXPECT_FALSE(index_map_fits_int32(map_of({1 << 16, 1 << 16}, {1 << 16, 1 << 16}), 1LL << 32));
  EXPECT_FALSE(index_map_fits_int32(map_of({3, 1 << 30}, {1, 4}), 4));
  IndexMap far = map_of({8}, {8});
  far.ax[0].start = -(1LL << 40);
  far.ax[0].mode = kAxisFill;
  EXPECT_FALSE(index_map_fits_int32(far, 8));
}

}  // namespace
}  // namespace kiln::cuda::kern
#endif  // KILN_WITH_CUDA
