// Which strategy the CUDA SpaceToDepthNhwc kernel takes (space_to_depth_rows_fit), and the shared memory its
// row strategy asks for: checked without a GPU, since a wrong size would write past the block's shared memory
// and a wrong choice would silently send the stems back to the slower per-pixel strategy.
#include <gtest/gtest.h>

#include "backends/space_to_depth_nhwc_geometry.h"

namespace kiln {
namespace {

SpaceToDepthGeometry geometry(Dims x, int64_t s, std::vector<int64_t> pre, Dims y, DataType x_dt, DataType y_dt) {
  ir::Attrs a;
  a.set("block", s);
  a.set("pre_padding", pre);
  SpaceToDepthGeometry g;
  EXPECT_EQ(space_to_depth_geometry(a, x, x_dt, y, y_dt, &g), "");
  return g;
}

// ResNet-50's stem (7x7/2 as 4x4 on 2x2 blocks): 3 channels x 2 rows of 230 float16 columns = 2760 bytes,
// rounded to 2768, then 6 row offsets (8 bytes) and 16 channel offsets (4 bytes).
TEST(SpaceToDepthNhwcGeometry, ResNetStemRowsAreStaged) {
  const SpaceToDepthGeometry g =
      geometry({128, 3, 224, 224}, 2, {3, 3}, {128, 115, 115, 16}, DataType::kFLOAT, DataType::kHALF);
  EXPECT_EQ(space_to_depth_staged_rows_bytes(g, 2), 2768);
  EXPECT_EQ(space_to_depth_row_stage_bytes(g, 2), 2768 + 6 * 8 + 16 * 4);
  EXPECT_TRUE(space_to_depth_rows_fit(g, 2));
  EXPECT_TRUE(space_to_depth_rows_fit(g, 4));  // float32 out: 5.5 KB
}

// MobileNetV2's stem (3x3/2 as 2x2 on 2x2 blocks, padded 1 before): 113 pixels a row.
TEST(SpaceToDepthNhwcGeometry, MobileNetStemRowsAreStaged) {
  const SpaceToDepthGeometry g =
      geometry({128, 3, 224, 224}, 2, {1, 1}, {128, 113, 113, 16}, DataType::kFLOAT, DataType::kHALF);
  EXPECT_EQ(space_to_depth_row_stage_bytes(g, 2), (3 * 2 * 226 * 2 + 15) / 16 * 16 + 6 * 8 + 16 * 4);
  EXPECT_TRUE(space_to_depth_rows_fit(g, 2));
}

// The limit is on the whole area, tables included; wider rows go per pixel.
TEST(SpaceToDepthNhwcGeometry, RowsPastTheLimitGoPerPixel) {
  const SpaceToDepthGeometry wide =
      geometry({2, 40, 9, 121}, 2, {1, 1}, {2, 5, 61, 160}, DataType::kHALF, DataType::kHALF);
  EXPECT_GT(space_to_depth_row_stage_bytes(wide, 2), kSpaceToDepthRowStageLimit);
  EXPECT_FALSE(space_to_depth_rows_fit(wide, 2));
  // 1 channel, block 1: U float16 columns (rounded up to 16 bytes) plus one row offset and one channel offset.
  // 8184 columns take 16368 + 12 bytes and fit; 8185 round up to 16384 + 12 and do not.
  auto row_of = [](int64_t u) {
    return geometry({1, 1, 1, u}, 1, {0, 0}, {1, 1, u, 1}, DataType::kHALF, DataType::kHALF);
  };
  EXPECT_EQ(space_to_depth_row_stage_bytes(row_of(8184), 2), 16368 + 12);
  EXPECT_TRUE(space_to_depth_rows_fit(row_of(8184), 2));
  EXPECT_EQ(space_to_depth_row_stage_bytes(row_of(8185), 2), 16384 + 12);
  EXPECT_FALSE(space_to_depth_rows_fit(row_of(8185), 2));
}

// Rows and columns of x are indexed in 32 bits in the row strategy: an image taller than 2^30 rows goes per pixel
// even when its rows are narrow.
TEST(SpaceToDepthNhwcGeometry, HugeImagesGoPerPixel) {
  const int64_t h = (int64_t{1} << 31) + 2;
  const SpaceToDepthGeometry g = geometry({1, 1, h, 4}, 2, {0, 0}, {1, h / 2, 2, 4}, DataType::kHALF, DataType::kHALF);
  EXPECT_LT(space_to_depth_row_stage_bytes(g, 2), kSpaceToDepthRowStageLimit);
  EXPECT_FALSE(space_to_depth_rows_fit(g, 2));
}

}  // namespace
}  // namespace kiln
