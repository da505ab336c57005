// Which Gather, Slice, DynamicSlice and Split layers are block views (each output one contiguous,
// 256-byte aligned run of the input's bytes) and at which byte offsets: the static plan runs no kernel for
// them, so a wrong "yes" or a wrong offset here would hand the readers the wrong bytes.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>

#include "ir/graph.h"
#include "runtime/block_views.h"
#include "runtime/shape_analysis.h"
#include "runtime/view_layers.h"

namespace kiln {
namespace {

using Offsets = std::optional<std::vector<int64_t>>;
using Ints = std::vector<int64_t>;

// A parameter input: a constant, or nullopt for an omitted input.
using Param = std::optional<HostTensor>;

struct OneLayer {
  ir::Graph g;
  ir::Node* node = nullptr;
  ShapeAnalysis shapes;
};

// x of `shape` -> one `op` layer reading x and `params` (constants), with `num_outputs` outputs.
std::unique_ptr<OneLayer> one_layer(const std::string& op, Dims shape, std::vector<Param> params, ir::Attrs attrs,
                                    int num_outputs = 1, DataType dtype = DataType::kFLOAT) {
  auto l = std::make_unique<OneLayer>();
  std::vector<ir::Value*> ins{l->g.add_input("x", dtype, shape)};
  for (size_t i = 0; i < params.size(); ++i)
    ins.push_back(params[i] ? l->g.add_constant("p" + std::to_string(i), *params[i])->outputs[0] : nullptr);
  l->node = l->g.add_node(op, "layer", ins, num_outputs);
  l->node->attrs = std::move(attrs);
  for (auto* o : l->node->outputs) l->g.mark_output(o);
  l->shapes = analyze_shapes(l->g, {shape}, true);
  return l;
}

ir::Attrs attrs_axis(int64_t axis) {
  ir::Attrs a;
  a.set("axis", axis);
  return a;
}

Offsets gather_offsets(Dims shape, HostTensor index, int64_t axis, DataType dtype = DataType::kFLOAT) {
  auto l = one_layer("Gather", std::move(shape), {std::move(index)}, attrs_axis(axis), 1, dtype);
  return block_view_offsets(*l->node, l->shapes);
}

Offsets one(int64_t bytes) { return std::vector<int64_t>{bytes}; }

TEST(BlockViews, GatherOfOneIndexOnALeadingAxisIsItsSlab) {
  // [3, 4, 64] float32: 1 KiB slabs, as q, k, v of a packed projection.
  EXPECT_EQ(gather_offsets({3, 4, 64}, HostTensor::scalar_i64(0), 0), one(0));
  EXPECT_EQ(gather_offsets({3, 4, 64}, HostTensor::scalar_i64(1), 0), one(1024));
  EXPECT_EQ(gather_offsets({3, 4, 64}, HostTensor::scalar_i64(2), 0), one(2048));
  EXPECT_EQ(gather_offsets({3, 4, 64}, HostTensor::scalar_i64(-1), 0), one(2048));  // negatives count from the end
  EXPECT_EQ(gather_offsets({3, 4, 64}, HostTensor::scalar_i64(-3), 0), one(0));
  // A one-element index list keeps the axis (shape [1, 4, 64]): the same bytes.
  EXPECT_EQ(gather_offsets({3, 4, 64}, HostTensor::from_i64({1}), 0), one(1024));
  // Dims of size 1 before the axis do not break the block.
  EXPECT_EQ(gather_offsets({1, 3, 64}, HostTensor::scalar_i64(2), 1), one(512));
  EXPECT_EQ(gather_offsets({1, 3, 64}, HostTensor::scalar_i64(2), -2), one(512));
  // Element size counts: float16 rows of 128 are 256 bytes.
  EXPECT_EQ(gather_offsets({3, 128}, HostTensor::scalar_i64(1), 0, DataType::kHALF), one(256));
  // view_offsets answers for block views as for reshapes.
  auto l = one_layer("Gather", {3, 4, 64}, {HostTensor::scalar_i64(1)}, attrs_axis(0));
  EXPECT_EQ(view_offsets(*l->node, l->shapes), one(1024));
  EXPECT_FALSE(is_view_layer(*l->node, l->shapes));  // not a reshape: its output is a part of the input
}

TEST(BlockViews, GathersThatAreNotOneAlignedBlockRunTheirKernel) {
  // Rows of other leading entries lie between the picked ones.
  EXPECT_EQ(gather_offsets({2, 3, 64}, HostTensor::scalar_i64(0), 1), std::nullopt);
  // 20-byte rows: index 1 starts at byte 20, not on a 256-byte boundary; index 0 starts at 0.
  EXPECT_EQ(gather_offsets({3, 5}, HostTensor::scalar_i64(1), 0), std::nullopt);
  EXPECT_EQ(gather_offsets({3, 5}, HostTensor::scalar_i64(0), 0), one(0));
  // Two indices, out-of-range indices (the kernel reports those).
  EXPECT_EQ(gather_offsets({3, 64}, HostTensor::from_i64({0, 1}), 0), std::nullopt);
  EXPECT_EQ(gather_offsets({3, 64}, HostTensor::scalar_i64(3), 0), std::nullopt);
  EXPECT_EQ(gather_offsets({3, 64}, HostTensor::scalar_i64(-4), 0), std::nullopt);
  // ELEMENT mode picks element by element.
  ir::Attrs element = attrs_axis(0);
  element.set("mode", int64_t{1});
  auto el = one_layer("Gather", {1, 64}, {HostTensor(DataType::kINT64, {1, 64})}, element);
  EXPECT_EQ(block_view_offsets(*el->node, el->shapes), std::nullopt);
  // An index the host does not know (a network input's data).
  ir::Graph g;
  auto* x = g.add_input("x", DataType::kFLOAT, {3, 64});
  auto* i = g.add_input("i", DataType::kINT64, {});
  auto* n = g.add_node("Gather", "layer", {x, i}, 1);
  n->attrs = attrs_axis(0);
  g.mark_output(n->outputs[0]);
  ShapeAnalysis shapes = analyze_shapes(g, {{3, 64}, {}}, true);
  EXPECT_EQ(block_view_offsets(*n, shapes), std::nullopt);
}

TEST(BlockViews, AGatherWithAFusedAddendIsASumNotItsSlab) {
  // The slab of index 1 would be a view (as above), but the output adds the addend to it: the kernel runs.
  auto l = one_layer("Gather", {3, 4, 64}, {HostTensor::scalar_i64(1), HostTensor(DataType::kFLOAT, {4, 64})},
                     attrs_axis(0));
  ASSERT_EQ(l->node->inputs.size(), 3u);
  EXPECT_EQ(block_view_offsets(*l->node, l->shapes), std::nullopt);
  EXPECT_EQ(view_offsets(*l->node, l->shapes), std::nullopt);
}

ir::Attrs slice_attrs(Ints start, Ints size, Ints stride, int64_t mode = 0) {
  ir::Attrs a;
  a.set("start", std::move(start));
  a.set("size", std::move(size));
  a.set("stride", std::move(stride));
  a.set("mode", mode);
  return a;
}

Offsets slice_offsets(Dims shape, ir::Attrs a) {
  auto l = one_layer("Slice", std::move(shape), {}, std::move(a));
  return block_view_offsets(*l->node, l->shapes);
}

TEST(BlockViews, TensorRTSlicesWithUnitStepsOfLeadingRowsAreBlocks) {
  EXPECT_EQ(slice_offsets({4, 64}, slice_attrs({1, 0}, {2, 64}, {1, 1})), one(256));
  // A stride matters only where more than one element is taken.
  EXPECT_EQ(slice_offsets({4, 64}, slice_attrs({1, 0}, {1, 64}, {5, 1})), one(256));
  // One row, and part of it: still one run (row 1, from element 64).
  EXPECT_EQ(slice_offsets({4, 128}, slice_attrs({1, 64}, {1, 64}, {1, 1})), one(768));
  // Start, size and stride as constant inputs.
  auto l = one_layer("Slice", {4, 64}, {HostTensor::from_i64({2, 0}), HostTensor::from_i64({2, 64}),
                                        HostTensor::from_i64({1, 1})}, ir::Attrs{});
  EXPECT_EQ(block_view_offsets(*l->node, l->shapes), one(512));
}

TEST(BlockViews, TensorRTSlicesThatAreNotOneAlignedBlockRunTheirKernel) {
  EXPECT_EQ(slice_offsets({4, 64}, slice_attrs({0, 0}, {2, 64}, {2, 1})), std::nullopt);   // every other row
  EXPECT_EQ(slice_offsets({2, 128}, slice_attrs({0, 64}, {2, 64}, {1, 1})), std::nullopt);  // a column block
  EXPECT_EQ(slice_offsets({4, 64}, slice_attrs({0, 0}, {2, 60}, {1, 1})), std::nullopt);    // part of two rows
  EXPECT_EQ(slice_offsets({4, 60}, slice_attrs({1, 0}, {2, 60}, {1, 1})), std::nullopt);    // starts at byte 240
  // Out of range in CLAMP mode (2): the kernel repeats the last row, which no view can.
  EXPECT_EQ(slice_offsets({4, 64}, slice_attrs({3, 0}, {2, 64}, {1, 1}, 2)), std::nullopt);
}

Offsets dynamic_slice_offsets(Dims shape, Ints starts, Ints ends, Param axes, Param steps) {
  auto l = one_layer("DynamicSlice", std::move(shape),
                     {HostTensor::from_i64(starts), HostTensor::from_i64(ends), std::move(axes), std::move(steps)},
                     ir::Attrs{});
  return block_view_offsets(*l->node, l->shapes);
}

TEST(BlockViews, OnnxSlicesFollowOnnxRangeRules) {
  const int64_t big = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(dynamic_slice_offsets({4, 64}, {1}, {3}, HostTensor::from_i64({0}), std::nullopt), one(256));
  EXPECT_EQ(dynamic_slice_offsets({4, 64}, {1}, {3}, std::nullopt, std::nullopt), one(256));  // axes default 0..
  EXPECT_EQ(dynamic_slice_offsets({4, 64}, {-3}, {big}, HostTensor::from_i64({0}), std::nullopt), one(256));
  // Backwards, but one row: row 2.
  EXPECT_EQ(dynamic_slice_offsets({4, 64}, {2}, {1}, HostTensor::from_i64({0}), HostTensor::from_i64({-1})),
            one(512));
  EXPECT_EQ(dynamic_slice_offsets({1, 128}, {64}, {128}, HostTensor::from_i64({-1}), std::nullopt), one(256));
  // Not one run, or not aligned.
  EXPECT_EQ(dynamic_slice_offsets({4, 64}, {0}, {4}, HostTensor::from_i64({0}), HostTensor::from_i64({2})),
            std::nullopt);
  EXPECT_EQ(dynamic_slice_offsets({4, 64}, {3}, {0}, HostTensor::from_i64({0}), HostTensor::from_i64({-1})),
            std::nullopt);
  EXPECT_EQ(dynamic_slice_offsets({2, 128}, {64}, {128}, HostTensor::from_i64({1}), std::nullopt), std::nullopt);
  EXPECT_EQ(dynamic_slice_offsets({4, 64}, {1}, {1}, HostTensor::from_i64({0}), std::nullopt), std::nullopt);  // empty
  EXPECT_EQ(dynamic_slice_offsets({1, 128}, {1}, {128}, HostTensor::from_i64({1}), std::nullopt), std::nullopt);
}

Offsets split_offsets(Dims shape, int64_t axis, int outputs, Ints sizes = {}, Param sizes_input = std::nullopt) {
  ir::Attrs a = attrs_axis(axis);
  if (!sizes.empty()) a.set("split", std::move(sizes));
  std::vector<Param> params;
  if (sizes_input) params.push_back(std::move(sizes_input));
  auto l = one_layer("Split", std::move(shape), std::move(params), std::move(a), outputs);
  return block_view_offsets(*l->node, l->shapes);
}

TEST(BlockViews, SplitsOfLeadingAxesAreBlocksWhenEveryChunkIsAligned) {
  EXPECT_EQ(split_offsets({4, 64}, 0, 2, {1, 3}), (std::vector<int64_t>{0, 256}));
  EXPECT_EQ(split_offsets({4, 64}, 0, 4), (std::vector<int64_t>{0, 256, 512, 768}));  // equal chunks
  EXPECT_EQ(split_offsets({4, 64}, 0, 2, {}, HostTensor::from_i64({2, 2})), (std::vector<int64_t>{0, 512}));
  EXPECT_EQ(split_offsets({1, 128}, 1, 2, {64, 64}), (std::vector<int64_t>{0, 256}));
  EXPECT_EQ(split_offsets({1, 128}, -1, 2, {64, 64}), (std::vector<int64_t>{0, 256}));
  // One chunk at byte 128 makes the whole layer a kernel: it writes all of its outputs or none.
  EXPECT_EQ(split_offsets({3, 32}, 0, 2, {1, 2}), std::nullopt);
  EXPECT_EQ(split_offsets({2, 128}, 1, 2, {64, 64}), std::nullopt);
}

}  // namespace
}  // namespace kiln
