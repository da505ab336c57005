// Which layers are views (their output is their input's bytes under another shape): the static plan runs
// no kernel for them, so a wrong "yes" here would hand a layer the wrong bytes.
#include <gtest/gtest.h>

#include "ir/graph.h"
#include "runtime/shape_analysis.h"
#include "runtime/view_layers.h"

namespace kiln {
namespace {

struct OneLayer {
  ir::Graph g;
  ir::Node* node = nullptr;
  ShapeAnalysis shapes;
};

// x of `in_shape` -> one `op` node (attrs set by `configure`), shapes analyzed.
std::unique_ptr<OneLayer> one_layer(const std::string& op, Dims in_shape, void (*configure)(ir::Attrs&),
                                    DataType dtype = DataType::kFLOAT) {
  auto l = std::make_unique<OneLayer>();
  auto* x = l->g.add_input("x", dtype, in_shape);
  l->node = l->g.add_node(op, "layer", {x}, 1);
  configure(l->node->attrs);
  l->g.mark_output(l->node->outputs[0]);
  l->shapes = analyze_shapes(l->g, {in_shape}, true);
  return l;
}

void no_attrs(ir::Attrs&) {}

TEST(ViewLayers, SqueezeUnsqueezeIdentityAndPureReshapesAreViews) {
  auto identity = one_layer("Identity", {2, 3}, no_attrs);
  EXPECT_TRUE(is_view_layer(*identity->node, identity->shapes));
  auto sq = one_layer("Squeeze", {2, 1, 3}, [](ir::Attrs& a) { a.set("axes", std::vector<int64_t>{1}); });
  EXPECT_TRUE(is_view_layer(*sq->node, sq->shapes));
  auto unsq = one_layer("Unsqueeze", {2, 3}, [](ir::Attrs& a) { a.set("axes", std::vector<int64_t>{0}); });
  EXPECT_TRUE(is_view_layer(*unsq->node, unsq->shapes));
  auto reshape = one_layer("Shuffle", {2, 3, 4}, [](ir::Attrs& a) {
    a.set("has_reshape", int64_t{1});
    a.set("reshape_dims", std::vector<int64_t>{6, -1});
  });
  EXPECT_TRUE(is_view_layer(*reshape->node, reshape->shapes));
  // Integer data too: a view never looks at the values.
  auto ints = one_layer("Squeeze", {1, 5}, [](ir::Attrs& a) { a.set("axes", std::vector<int64_t>{0}); },
                        DataType::kINT64);
  EXPECT_TRUE(is_view_layer(*ints->node, ints->shapes));
}

TEST(ViewLayers, TransposesAreViewsOnlyWhenTheyMoveUnitDims) {
  auto transpose = one_layer("Shuffle", {2, 3}, [](ir::Attrs& a) {
    a.set("first_transpose", std::vector<int64_t>{1, 0});
  });
  EXPECT_FALSE(is_view_layer(*transpose->node, transpose->shapes));
  // [2, 1, 3] -> [1, 2, 3]: only the unit dim moves, the bytes stay in order.
  auto unit_first = one_layer("Shuffle", {2, 1, 3}, [](ir::Attrs& a) {
    a.set("first_transpose", std::vector<int64_t>{1, 0, 2});
  });
  EXPECT_TRUE(is_view_layer(*unit_first->node, unit_first->shapes));
  // The same permutation on [2, 4, 3] swaps two real dims.
  auto real_first = one_layer("Shuffle", {2, 4, 3}, [](ir::Attrs& a) {
    a.set("first_transpose", std::vector<int64_t>{1, 0, 2});
  });
  EXPECT_FALSE(is_view_layer(*real_first->node, real_first->shapes));
  // Second transpose after a reshape: [6] -> [2, 3] -> [3, 2] moves data; [6] -> [1, 6] -> [6, 1] does not.
  auto second_real = one_layer("Shuffle", {6}, [](ir::Attrs& a) {
    a.set("has_reshape", int64_t{1});
    a.set("reshape_dims", std::vector<int64_t>{2, 3});
    a.set("second_transpose", std::vector<int64_t>{1, 0});
  });
  EXPECT_FALSE(is_view_layer(*second_real->node, second_real->shapes));
  auto second_unit = one_layer("Shuffle", {6}, [](ir::Attrs& a) {
    a.set("has_reshape", int64_t{1});
    a.set("reshape_dims", std::vector<int64_t>{1, 6});
    a.set("second_transpose", std::vector<int64_t>{1, 0});
  });
  EXPECT_TRUE(is_view_layer(*second_unit->node, second_unit->shapes));
  // Identity permutations written out are views.
  auto spelled = one_layer("Shuffle", {2, 3}, [](ir::Attrs& a) {
    a.set("first_transpose", std::vector<int64_t>{0, 1});
    a.set("second_transpose", std::vector<int64_t>{0, 1});
  });
  EXPECT_TRUE(is_view_layer(*spelled->node, spelled->shapes));
}

TEST(ViewLayers, CopiesThatChangeBytesAreNotViews) {
  auto cast = one_layer("Cast", {4}, [](ir::Attrs& a) { a.set("to", static_cast<int64_t>(DataType::kHALF)); });
  EXPECT_FALSE(is_view_layer(*cast->node, cast->shapes));
  auto act = one_layer("Activation", {4}, [](ir::Attrs& a) { a.set("type", int64_t{0}); });
  EXPECT_FALSE(is_view_layer(*act->node, act->shapes));
}

}  // namespace
}  // namespace kiln
